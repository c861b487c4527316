"""好就医 reads the citizen's 医保电子凭证 (medical insurance card) through the contract's consent sharing
only: the citizen links it once, standing; each bill reads it (every read in the citizen's use log) and
says which card it settled against. Refused, withdrawn or suspended, the bill names none and splits the
same."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.clock import FrozenClock
from miniapps.contract import Conflict
from miniapps.hospital.rules import CARD_PURPOSE
from tests.conftest import basic_auth
from tests.integration.licences.office import Citizen, Office

CARD = "/api/v1/apps/hospital/insurance-card"
ITEMS = [
    {"name": "挂号费", "amount": 500},
    {"name": "药品", "amount": 12345},
    {"name": "自费检查", "amount": 20001, "covered": False},
]
# the split of ITEMS for a citizen insured in Liaoning at a Shenyang hospital, card or no card
SPLIT = {"total": 32846, "insured": 350 + 8641, "self_paid": 32846 - 8991}


@dataclass
class Clinic:
    client: Any
    clock: FrozenClock
    office: Office
    gate: dict[str, Any]
    backend: dict[str, str]
    bureau: dict[str, Any]
    cards: dict[str, str]  # the healthcare security bureau's issuer credential
    push_change: Any

    async def patient(self, name: str = "周九") -> Citizen:
        """A verified citizen insured in 沈阳市和平区 by the bureau's word (the code's entitlement)."""
        citizen = await self.office.citizen(name=name)
        await self.push_change(
            self.client,
            self.bureau,
            citizen.id_number,
            {"insured": True, "region": "210102", "type": "employee"},
        )
        return citizen

    async def issue_card(self, citizen: Citizen, **changes: Any) -> dict[str, Any]:
        fields = {
            "name": "周九",
            "id_number": citizen.id_number,
            "insurance_number": "H2101020" + citizen.id_number[-8:],
            "insurance_type": "职工基本医疗保险",
            "region": "辽宁省沈阳市和平区",
            "valid_from": "2020-01-01",
            **changes,
        }
        r = await self.client.post(
            "/api/v1/licences/issued",
            json={"type": "medical_insurance_card", "id_number": citizen.id_number, "fields": fields},
            headers=self.cards,
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def answer(self, citizen: Citizen, request_id: str, verb: str) -> None:
        body = {"json": {}} if verb == "approve" else {}
        r = await self.client.post(
            f"/api/v1/me/licence-requests/{request_id}/{verb}", headers=citizen.me, **body
        )
        assert r.status_code == 200, r.text

    async def card(self, citizen: Citizen) -> dict[str, Any]:
        r = await self.client.get(CARD, headers=citizen.me)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def visit_billed(self, citizen: Citizen) -> dict[str, Any]:
        """The citizen walks in (checked in by code) and the hospital posts the bill of ITEMS."""
        self.clock.advance(31)
        token = (await self.client.get("/api/v1/codes/current", headers=citizen.me)).json()["token"]
        r = await self.client.post("/api/v1/scans", json={"token": token}, headers=self.gate["headers"])
        assert r.json()["result"] == "allow", r.text
        visit_id = r.json()["data"]["visit_id"]
        r = await self.client.post(
            f"/api/v1/apps/hospital/visits/{visit_id}/bill", json={"items": ITEMS}, headers=self.backend
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def visits(self, citizen: Citizen) -> list[dict[str, Any]]:
        return list(
            (await self.client.get("/api/v1/apps/hospital/visits", headers=citizen.me)).json()["items"]
        )

    async def uses(self, citizen: Citizen) -> list[dict[str, Any]]:
        return list((await self.client.get("/api/v1/me/licence-uses", headers=citizen.me)).json()["items"])


@pytest.fixture
async def clinic(
    make_client, login, new_phone, new_id_number, verify_real_name, enrol_scanner, enrol_source, push_change
):
    clock = FrozenClock(datetime(2026, 11, 25, 0, 30, tzinfo=UTC))  # 08:30 China time
    async with make_client(clock=clock, access_token_ttl=30 * 86400) as client:
        await client.services.miniapps.apps["hospital"].seed_demo()
        gate = await enrol_scanner(client, "hospital", context="hospital-checkin", place="H-SHENGJING")
        backend = basic_auth(await client.services.auth.machines.create("miniapp", app_id="hospital"))
        bureau = await enrol_source(client, "medical", name="沈阳市医疗保障局")
        office = await Office(client, login, new_phone, new_id_number, verify_real_name).setup()
        r = await client.post(
            "/api/v1/admin/licences/issuers",
            json={
                "code": "sy-healthcare",
                "name_zh": "沈阳市医疗保障局",
                "name_en": "Shenyang Healthcare Security Administration",
                "department": "healthcare_security",
                "types": ["medical_insurance_card"],
            },
            headers=office.operator,
        )
        assert r.status_code == 201, r.text
        yield Clinic(client, clock, office, gate, backend, bureau, basic_auth(r.json()), push_change)


async def test_a_linked_card_is_read_at_each_bill_and_the_bill_names_it(clinic):
    client = clinic.client
    me = await clinic.patient()
    issued = await clinic.issue_card(me)
    r = await client.get(CARD, headers=me.me)
    assert r.status_code == 404 and r.json()["code"] == "insurance_card_not_found"

    r = await client.post(CARD, headers=me.me)
    assert r.status_code == 201, r.text
    asked = r.json()
    assert (asked["state"], asked["insurance_number"]) == ("pending", "")
    again = await client.post(CARD, headers=me.me)
    assert again.status_code == 200 and again.json()["request_id"] == asked["request_id"]

    # the wallet asks the citizen: 好就医, these four fields, standing, and what for
    pending = (await client.get("/api/v1/me/licence-requests?state=pending", headers=me.me)).json()["items"]
    [ask] = pending
    assert (ask["id"], ask["requester"]["name"], ask["type"], ask["mode"]) == (
        asked["request_id"],
        "好就医",
        "medical_insurance_card",
        "standing",
    )
    assert [f["zh"] for f in ask["fields"]] == ["姓名", "医保编号", "参保类型", "参保地"]
    assert ask["purpose"] == CARD_PURPOSE
    assert (await clinic.card(me))["state"] == "pending"

    await clinic.answer(me, asked["request_id"], "approve")
    card = await clinic.card(me)
    number = "H2101020" + me.id_number[-8:]
    assert (
        card["state"],
        card["name"],
        card["insurance_number"],
        card["insurance_type"],
        card["region"],
    ) == (
        "linked",
        "周九",
        number,
        "职工基本医疗保险",
        "辽宁省沈阳市和平区",
    )
    assert card["linked_at"] is not None and card["reason"] == ""
    await clinic.card(me)  # looking again reads nothing more

    # the bill settles against the card and says so; the split is the one of the rule, card or not
    bill = await clinic.visit_billed(me)
    assert {k: bill[k] for k in SPLIT} == SPLIT
    assert bill["insurance"] == {"number": number, "type": "职工基本医疗保险"}
    [visit] = await clinic.visits(me)
    assert visit["insurance"] == bill["insurance"] and visit["insured"] == SPLIT["insured"]

    # the card changes at the bureau (another scheme): the next bill reads what it says now
    r = await client.patch(
        f"/api/v1/licences/issued/{issued['id']}",
        json={"fields": {"insurance_type": "城乡居民基本医疗保险"}},
        headers=clinic.cards,
    )
    assert r.status_code == 200, r.text
    later = await clinic.visit_billed(me)
    assert later["insurance"] == {"number": number, "type": "城乡居民基本医疗保险"}
    assert (await clinic.card(me))["insurance_type"] == "城乡居民基本医疗保险"

    # the use log: the link and each bill, by 好就医, these four fields, for the stated purpose
    uses = await clinic.uses(me)
    assert len(uses) == 3
    for use in uses:
        assert (use["kind"], use["by_kind"], use["by_name"], use["type"]) == (
            "shared",
            "miniapp",
            "好就医",
            "medical_insurance_card",
        )
        assert [f["name"] for f in use["fields"]] == ["name", "insurance_number", "insurance_type", "region"]
        assert use["purpose"] == CARD_PURPOSE and use["licence"] == issued["id"]
        assert use["request"] == asked["request_id"]


async def test_a_refused_card_is_never_read_and_bills_are_as_before(clinic):
    client = clinic.client
    me = await clinic.patient()
    await clinic.issue_card(me)
    asked = (await client.post(CARD, headers=me.me)).json()
    await clinic.answer(me, asked["request_id"], "refuse")
    card = await clinic.card(me)
    assert (card["state"], card["reason"], card["insurance_number"]) == ("refused", "consent_refused", "")

    # the mini-app, through its contract, is given nothing for that request
    platform = client.services.miniapps.apps["hospital"].platform
    with pytest.raises(Conflict) as refused:
        await platform.licence_fields(asked["request_id"])
    assert refused.value.code == "consent_refused"

    bill = await clinic.visit_billed(me)
    assert {k: bill[k] for k in SPLIT} == SPLIT and bill["insurance"] is None
    assert (await clinic.visits(me))[0]["insurance"] is None
    assert await clinic.uses(me) == []

    # linking again asks anew (the refused request stays refused)
    r = await client.post(CARD, headers=me.me)
    assert r.status_code == 201 and r.json()["state"] == "pending"
    assert r.json()["request_id"] != asked["request_id"]


async def test_a_withdrawn_or_suspended_card_is_not_read_and_the_bill_names_none(clinic):
    client = clinic.client
    me = await clinic.patient()
    issued = await clinic.issue_card(me)
    asked = (await client.post(CARD, headers=me.me)).json()
    await clinic.answer(me, asked["request_id"], "approve")
    assert (await clinic.card(me))["state"] == "linked"

    # the bureau suspends the card: a bill meanwhile names none, the card stays linked
    path = f"/api/v1/licences/issued/{issued['id']}"
    assert (await client.post(f"{path}/suspend", json={}, headers=clinic.cards)).status_code == 200
    bill = await clinic.visit_billed(me)
    assert {k: bill[k] for k in SPLIT} == SPLIT and bill["insurance"] is None
    assert (await clinic.card(me))["state"] == "linked"
    assert (await client.post(f"{path}/reinstate", json={}, headers=clinic.cards)).status_code == 200
    assert (await clinic.visit_billed(me))["insurance"]["type"] == "职工基本医疗保险"

    # the citizen withdraws the consent in the wallet: the next bill reads nothing and names no card
    await clinic.answer(me, asked["request_id"], "revoke")
    bill = await clinic.visit_billed(me)
    assert {k: bill[k] for k in SPLIT} == SPLIT and bill["insurance"] is None
    card = await clinic.card(me)
    assert (card["state"], card["reason"]) == ("withdrawn", "consent_revoked")
    assert len(await clinic.uses(me)) == 2  # the link and the bill while the card was valid
    assert [v["insurance"] is not None for v in await clinic.visits(me)].count(True) == 1


async def test_two_looks_at_once_link_the_card_with_one_read(clinic):
    client = clinic.client
    me = await clinic.patient()
    await clinic.issue_card(me)
    asked = await asyncio.gather(*(client.post(CARD, headers=me.me) for _ in range(3)))
    assert sorted(r.status_code for r in asked) == [200, 200, 201]
    assert len({r.json()["request_id"] for r in asked}) == 1
    await clinic.answer(me, asked[0].json()["request_id"], "approve")
    looks = await asyncio.gather(*(client.get(CARD, headers=me.me) for _ in range(4)))
    assert {r.json()["state"] for r in looks} == {"linked"}
    assert len(await clinic.uses(me)) == 1

"""好停车 plates checked against the citizen's vehicle licence (机动车行驶证), through the contract's consent
sharing only: the citizen adds a plate, parking asks for the plate number and vehicle type, the citizen
approves or refuses in the wallet, and the plate is verified, a mismatch, refused or lapsed. What was
read shows in the citizen's use log; a verified plate shows at the entry barrier, in reservations and
stays, deciding nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from backend.clock import FrozenClock
from miniapps.contract import Conflict
from miniapps.parking.rules import plate_purpose
from tests.integration.licences.office import Citizen, Office

START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
PLATES = "/api/v1/apps/parking/plates"
VEHICLE = {
    "vehicle_type": "小型轿车",
    "owner": "王小明",
    "use_character": "非营运",
    "model": "比亚迪牌BYD7152",
    "vin": "LGXCE4CB5N0123456",
    "registered_on": "2021-05-10",
    "issued_on": "2021-05-10",
    "issuing_authority": "沈阳市公安局交通警察支队",
}


@dataclass
class Garage:
    client: Any
    clock: FrozenClock
    office: Office
    gates: dict[str, Any]

    async def vehicle_licence(self, citizen: Citizen, plate_number: str) -> dict[str, Any]:
        """The traffic police issue the citizen a vehicle licence of that plate."""
        r = await self.client.post(
            "/api/v1/licences/issued",
            json={
                "type": "vehicle_licence",
                "id_number": citizen.id_number,
                "fields": {**VEHICLE, "plate_number": plate_number},
            },
            headers=self.office.issuer,
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def plates(self, citizen: Citizen) -> dict[str, dict[str, Any]]:
        r = await self.client.get(PLATES, headers=citizen.me)
        assert r.status_code == 200, r.text
        return {p["plate"]: p for p in r.json()["items"]}

    async def asked(self, citizen: Citizen) -> list[dict[str, Any]]:
        """The requests the citizen has to answer, as the wallet lists them."""
        r = await self.client.get("/api/v1/me/licence-requests?state=pending", headers=citizen.me)
        return list(r.json()["items"])

    async def answer(self, citizen: Citizen, request_id: str, approve: bool, **body: Any) -> None:
        verb = "approve" if approve else "refuse"
        r = await self.client.post(
            f"/api/v1/me/licence-requests/{request_id}/{verb}", json=body, headers=citizen.me
        )
        assert r.status_code == 200, r.text

    async def uses(self, citizen: Citizen) -> list[dict[str, Any]]:
        return list((await self.client.get("/api/v1/me/licence-uses", headers=citizen.me)).json()["items"])

    async def scan(self, citizen: Citizen, gate: str, camera: str) -> dict[str, Any]:
        self.clock.advance(31)
        token = (await self.client.get("/api/v1/codes/current", headers=citizen.me)).json()["token"]
        r = await self.client.post(
            "/api/v1/scans",
            json={"token": token, "meta": {"plate": camera}},
            headers=self.gates[gate]["headers"],
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def reserve(self, citizen: Citizen, plate: str) -> dict[str, Any]:
        r = await self.client.post(
            "/api/v1/apps/parking/reservations",
            headers=citizen.me,
            json={"car_park": "P-TAIYUAN", "plate": plate, "starts_at": self.clock.now().isoformat()},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())


@pytest.fixture
async def garage(make_client, login, new_phone, new_id_number, verify_real_name, enrol_scanner):
    clock = FrozenClock(START)
    async with make_client(clock=clock, access_token_ttl=30 * 86400) as client:
        await client.services.miniapps.apps["parking"].seed_demo()
        office = await Office(client, login, new_phone, new_id_number, verify_real_name).setup()
        gates = {
            "in": await enrol_scanner(client, "parking", context="parking-entry", place="P-TAIYUAN"),
            "out": await enrol_scanner(client, "parking", context="parking-exit", place="P-TAIYUAN"),
        }
        yield Garage(client, clock, office, gates)


async def test_an_approved_plate_is_verified_and_shows_at_the_barrier_and_in_the_use_log(garage):
    client = garage.client
    me = await garage.office.citizen()
    await garage.vehicle_licence(me, "辽A5B123")

    # added in lower case: stored and asked for as the plate rule writes it, once however often it is sent
    r = await client.post(PLATES, json={"plate": "辽a5b123"}, headers=me.me)
    assert r.status_code == 201, r.text
    added = r.json()
    assert (added["plate"], added["state"], added["vehicle_type"]) == ("辽A5B123", "pending", "")
    again = await client.post(PLATES, json={"plate": "辽A5B123"}, headers=me.me)
    assert again.status_code == 200 and again.json()["request_id"] == added["request_id"]

    # the citizen is asked in the wallet: by 好停车, for the plate number and the vehicle type, once, and why
    [ask] = await garage.asked(me)
    assert ask["id"] == added["request_id"] and ask["requester"]["name"] == "好停车"
    assert (ask["type"], [f["zh"] for f in ask["fields"]], ask["mode"]) == (
        "vehicle_licence",
        ["号牌号码", "车辆类型"],
        "once",
    )
    assert ask["purpose"] == plate_purpose("辽A5B123") and "辽A5B123" in ask["purpose"]
    assert (await garage.plates(me))["辽A5B123"]["state"] == "pending"  # not answered yet
    assert await garage.uses(me) == []

    await garage.answer(me, added["request_id"], approve=True)
    plate = (await garage.plates(me))["辽A5B123"]
    assert (plate["state"], plate["reason"], plate["vehicle_type"]) == ("verified", "", "小型轿车")
    assert plate["settled_at"] is not None

    # the use log: parking read exactly the plate number and the vehicle type, once, for the stated purpose
    await garage.plates(me)  # looking again reads nothing more
    [use] = await garage.uses(me)
    assert (use["kind"], use["by_kind"], use["by_id"], use["by_name"]) == (
        "shared",
        "miniapp",
        "parking",
        "好停车",
    )
    assert [f["name"] for f in use["fields"]] == ["plate_number", "vehicle_type"]
    assert [f["zh"] for f in use["fields"]] == ["号牌号码", "车辆类型"]
    assert use["purpose"] == plate_purpose("辽A5B123") and use["request"] == added["request_id"]
    assert use["type"] == "vehicle_licence"

    # a reservation for the verified plate says so; for another plate it does not, and both are made
    assert (await garage.reserve(me, "辽a5b123"))["plate_verified"] is True
    items = (await client.get("/api/v1/apps/parking/reservations", headers=me.me)).json()["items"]
    assert [(i["plate"], i["plate_verified"]) for i in items] == [("辽A5B123", True)]

    # at the barrier: the camera's plate is the verified one (in whatever case it reads it)
    entered = await garage.scan(me, "in", "辽a5b123")
    assert entered["result"] == "allow" and entered["data"] == {"reserved": True, "plate_verified": True}
    assert entered["display"]["title"] == "欢迎"
    left = await garage.scan(me, "out", "辽a5b123")
    assert left["result"] == "allow"
    [stay] = (await client.get("/api/v1/apps/parking/sessions", headers=me.me)).json()["items"]
    assert stay["plate"] == "辽a5b123" and stay["plate_verified"] is True and stay["state"] == "closed"

    # another car, the same citizen: let in as before, not verified
    other = await garage.scan(me, "in", "辽A99999")
    assert other["result"] == "allow" and other["data"] == {"reserved": False, "plate_verified": False}

    # removed, then added again: asked for again (a new request), pending until answered
    assert (await client.delete(f"{PLATES}/{quote('辽A5B123')}", headers=me.me)).status_code == 204
    gone = await client.delete(f"{PLATES}/{quote('辽A5B123')}", headers=me.me)
    assert gone.status_code == 404 and gone.json()["code"] == "plate_not_found"
    assert await garage.plates(me) == {}
    readded = await client.post(PLATES, json={"plate": "辽A5B123"}, headers=me.me)
    assert readded.status_code == 201 and readded.json()["state"] == "pending"
    assert readded.json()["request_id"] != added["request_id"]
    assert [a["id"] for a in await garage.asked(me)] == [readded.json()["request_id"]]


async def test_a_refused_plate_is_never_verified_and_parking_gets_no_fields(garage):
    client = garage.client
    me = await garage.office.citizen()
    await garage.vehicle_licence(me, "辽A7C456")
    added = (await client.post(PLATES, json={"plate": "辽A7C456"}, headers=me.me)).json()
    await garage.answer(me, added["request_id"], approve=False)

    plate = (await garage.plates(me))["辽A7C456"]
    assert (plate["state"], plate["reason"], plate["vehicle_type"]) == ("refused", "consent_refused", "")
    # the mini-app, through its contract, is given nothing for that request
    platform = client.services.miniapps.apps["parking"].platform
    with pytest.raises(Conflict) as refused:
        await platform.licence_fields(added["request_id"])
    assert refused.value.code == "consent_refused"
    assert await garage.uses(me) == []  # nothing of the licence was read

    # and it stays refused: not verified at the barrier, nor in a reservation
    assert (await garage.reserve(me, "辽A7C456"))["plate_verified"] is False
    entered = await garage.scan(me, "in", "辽A7C456")
    assert entered["result"] == "allow" and entered["data"]["plate_verified"] is False
    assert (await garage.plates(me))["辽A7C456"]["state"] == "refused"


async def test_a_licence_of_another_plate_is_a_mismatch_and_the_right_one_verifies(garage):
    client = garage.client
    me = await garage.office.citizen()
    own = await garage.vehicle_licence(me, "辽A1D001")  # the citizen's own car is another one
    added = (await client.post(PLATES, json={"plate": "辽A1D002"}, headers=me.me)).json()
    await garage.answer(me, added["request_id"], approve=True)
    plate = (await garage.plates(me))["辽A1D002"]
    assert (plate["state"], plate["vehicle_type"]) == ("mismatch", "")
    [use] = await garage.uses(me)  # the licence was read (and the citizen sees it was), it did not match
    assert use["by_name"] == "好停车"
    assert [f["name"] for f in use["fields"]] == ["plate_number", "vehicle_type"]
    entered = await garage.scan(me, "in", "辽A1D002")
    assert entered["result"] == "allow" and entered["data"]["plate_verified"] is False

    # a citizen with two cars approves with the licence of the plate asked for
    second = await garage.vehicle_licence(me, "辽A1D002")
    await client.delete(f"{PLATES}/{quote('辽A1D002')}", headers=me.me)
    added = (await client.post(PLATES, json={"plate": "辽A1D002"}, headers=me.me)).json()
    await garage.answer(me, added["request_id"], approve=True, licence=second["id"])
    assert (await garage.plates(me))["辽A1D002"]["state"] == "verified"
    newest, earlier = await garage.uses(me)
    assert (newest["licence"], newest["request"]) == (second["id"], added["request_id"])
    assert earlier["licence"] == own["id"]


async def test_a_request_nobody_answers_lapses(garage):
    client = garage.client
    me = await garage.office.citizen()
    await garage.vehicle_licence(me, "辽A3E789")
    await client.post(PLATES, json={"plate": "辽A3E789"}, headers=me.me)
    garage.clock.advance(timedelta(days=8).total_seconds())
    plate = (await garage.plates(me))["辽A3E789"]
    assert (plate["state"], plate["reason"]) == ("lapsed", "consent_expired")
    assert await garage.asked(me) == []


async def test_adding_and_settling_at_once_ask_and_read_once(garage):
    client = garage.client
    me = await garage.office.citizen()
    await garage.vehicle_licence(me, "辽A8F321")
    added = await asyncio.gather(
        *(client.post(PLATES, json={"plate": "辽A8F321"}, headers=me.me) for _ in range(4))
    )
    assert sorted(r.status_code for r in added) == [200, 200, 200, 201]
    assert len({r.json()["request_id"] for r in added}) == 1
    assert len(await garage.asked(me)) == 1
    await garage.answer(me, added[0].json()["request_id"], approve=True)
    looks = await asyncio.gather(*(client.get(PLATES, headers=me.me) for _ in range(4)))
    assert {r.json()["items"][0]["state"] for r in looks} == {"verified"}
    assert len(await garage.uses(me)) == 1  # the one-time consent read once


async def test_plates_page_and_are_the_callers_own(garage, walk_pages):
    client = garage.client
    me, other = await garage.office.citizen(), await garage.office.citizen(name="李四")
    for n in range(5):
        garage.clock.advance(1)
        r = await client.post(PLATES, json={"plate": f"辽B0000{n}"}, headers=me.me)
        assert r.status_code == 201
    # a sixth while five wait for the citizen's answer: not asked (the platform spares their inbox), not kept
    r = await client.post(PLATES, json={"plate": "辽B00005"}, headers=me.me)
    assert r.status_code == 409 and r.json()["code"] == "requests_pending"
    mine = await walk_pages(client, PLATES, limit=2, headers=me.me)
    assert [p["plate"] for p in mine] == [f"辽B0000{n}" for n in reversed(range(5))]  # newest first
    assert len(await garage.asked(me)) == 5
    assert (await client.get(PLATES, headers=other.me)).json()["items"] == []
    r = await client.delete(f"{PLATES}/{quote('辽B00001')}", headers=other.me)
    assert r.status_code == 404
    r = await client.post(PLATES, json={"plate": "辽B1"}, headers=me.me)
    assert r.status_code == 400 and r.json()["code"] == "invalid_body"
    assert (await client.get(PLATES)).status_code == 401

"""What must happen once happens once, with many callers at once (on PostgreSQL this is real concurrency
across pooled connections; SQLite serialises writers and proves less): a one-time consent shares once,
an issuer's retries issue one licence, each licence gets its own status entry, a device proof's nonce
binds one credential, a request is decided once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from licences import holder
from licences.tables import Licence, LicenceRequest, LicenceStatusList, LicenceUse
from tests.conftest import basic_auth
from tests.integration.licences.office import DRIVING, Citizen

pytestmark = pytest.mark.asyncio
N = 20


async def test_a_one_time_consent_shares_once_under_twenty_callers(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        await office.issue(citizen)
        rp = basic_auth(await client.services.auth.machines.create("relying_party", name="窗口"))
        ask = {
            "type": "driving_licence",
            "fields": ["licence_class"],
            "purpose": "核验准驾车型",
            "id_number": citizen.id_number,
        }
        request_id = (await client.post("/api/v1/licences/requests", json=ask, headers=rp)).json()["id"]
        await client.post(f"/api/v1/me/licence-requests/{request_id}/approve", json={}, headers=citizen.me)
        answers = await asyncio.gather(
            *(
                client.post(f"/api/v1/licences/requests/{request_id}/presentation", headers=rp)
                for _ in range(N)
            )
        )
        codes = Counter(r.status_code for r in answers)
        assert codes == {200: 1, 409: N - 1}, codes
        assert {r.json()["code"] for r in answers if r.status_code == 409} == {"consent_used"}
        # the books: one use logged, the request spent
        uses = (
            await LicenceUse.select().where(LicenceUse.request == __import__("uuid").UUID(request_id)).run()
        )
        assert len(uses) == 1 and uses[0]["kind"] == "shared"
        row = (
            await LicenceRequest.select(LicenceRequest.state)
            .where(LicenceRequest.id == request_id)
            .first()
            .run()
        )
        assert row["state"] == "used"


async def test_an_issuers_retries_issue_one_licence_and_every_licence_its_own_status_entry(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        body = {
            "type": "driving_licence",
            "id_number": citizen.id_number,
            "fields": {**DRIVING, "licence_number": citizen.id_number},
        }
        answers = await asyncio.gather(
            *(client.post("/api/v1/licences/issued", json=body, headers=office.issuer) for _ in range(N))
        )
        codes = Counter(r.status_code for r in answers)
        assert codes[201] == 1 and codes[201] + codes[200] + codes.get(409, 0) == N, codes
        assert {r.json()["id"] for r in answers if r.status_code in (200, 201)} == {
            next(r.json()["id"] for r in answers if r.status_code == 201)
        }
        # many citizens' licences at once: each its own entry in the status list
        others = [await office.citizen() for _ in range(8)]
        made = await asyncio.gather(*(office.issue(c) for c in others))
        rows = await Licence.select(Licence.status_list, Licence.status_idx).run()
        assert len(rows) == 1 + len(made)
        assert len({(r["status_list"], r["status_idx"]) for r in rows}) == len(rows)


async def _lists() -> list[tuple[int, int, int]]:
    """The issuer's status lists: (number, entries handed out, licences in it)."""
    lists = (
        await LicenceStatusList.select()
        .where(LicenceStatusList.issuer == "sy-traffic")
        .order_by(LicenceStatusList.number)
        .run()
    )
    licences = Counter(r["status_list"] for r in await Licence.select(Licence.status_list).run())
    return [(r["number"], r["used"], licences[r["id"]]) for r in lists]


async def test_racing_licences_take_entries_of_one_list_and_a_full_list_gets_one_successor(
    open_office, new_id_number
):
    """An issuer's first licences, racing, open one list between them; a list filling under racing
    licences gets exactly one successor; every entry handed out is a licence's (none taken and lost)."""
    async with open_office() as office:
        await asyncio.gather(*(office.issue(Citizen({}, new_id_number())) for _ in range(N)))
        assert await _lists() == [(1, N, N)]
        full = (await LicenceStatusList.select(LicenceStatusList.size).first().run())["size"]
        await (
            LicenceStatusList.update({LicenceStatusList.used: full - 3})
            .where(LicenceStatusList.issuer == "sy-traffic")
            .run()
        )  # as though the list had filled but for three entries
        await asyncio.gather(*(office.issue(Citizen({}, new_id_number())) for _ in range(N)))
        (first, used, _), *rest = await _lists()
        assert (first, used) == (1, full)
        assert rest == [(2, N - 3, N - 3)]
        rows = await Licence.select(Licence.status_list, Licence.status_idx).run()
        assert len({(r["status_list"], r["status_idx"]) for r in rows}) == len(rows) == 2 * N


async def test_one_proof_binds_one_credential_and_a_request_is_decided_once(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        nonce = (await client.post("/api/v1/me/licences/nonce", headers=citizen.me)).json()
        proof = holder.proof(
            citizen.key,
            audience=nonce["audience"],
            nonce=nonce["c_nonce"],
            iat=int(client.runtime.clock.time()),
        )
        answers = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/me/licences/{issued['id']}/credential",
                    json={"proof": proof},
                    headers=citizen.me,
                )
                for _ in range(10)
            )
        )
        assert Counter(r.status_code for r in answers) == {200: 1, 422: 9}
        rp = basic_auth(await client.services.auth.machines.create("relying_party", name="窗口"))
        ask = {
            "type": "driving_licence",
            "fields": ["name"],
            "purpose": "核验姓名",
            "id_number": citizen.id_number,
        }
        request_id = (await client.post("/api/v1/licences/requests", json=ask, headers=rp)).json()["id"]
        decisions = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/me/licence-requests/{request_id}/{'approve' if n % 2 else 'refuse'}",
                    json={},
                    headers=citizen.me,
                )
                for n in range(10)
            )
        )
        assert Counter(r.status_code for r in decisions)[200] == 1
        winner = next(r.json()["state"] for r in decisions if r.status_code == 200)
        row = (
            await LicenceRequest.select(LicenceRequest.state)
            .where(LicenceRequest.id == request_id)
            .first()
            .run()
        )
        assert row["state"] == winner


async def test_racing_status_changes_end_in_one_state_the_status_list_tells(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        issued = await office.issue(citizen)
        path = f"/api/v1/licences/issued/{issued['id']}"
        actions = ["suspend", "revoke", "reinstate"] * 4
        await asyncio.gather(*(client.post(f"{path}/{a}", json={}, headers=office.issuer) for a in actions))
        row = (
            await Licence.select(Licence.status, Licence.status_idx)
            .where(Licence.id == issued["id"])
            .first()
            .run()
        )
        trust = await office.inspector_trust()
        credential_status = row["status"]
        # whatever won, the published list says the same as the books
        from tests.integration.licences.office import claims_of  # noqa: F401 (documents where uri comes from)

        number = 1
        token = (await client.get(f"/api/v1/licences/status/sy-traffic/{number}")).text
        from licences.verifier import STATUS_NAMES, StatusList

        listed = StatusList.from_token(token, trust)
        assert STATUS_NAMES[listed.status(row["status_idx"])] == credential_status

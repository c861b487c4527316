"""A requester cannot flood a citizen's inbox with requests, nor dress a purpose in characters that hide
what it says."""

from __future__ import annotations

import pytest

from licences.tables import LicenceRequest
from tests.conftest import basic_auth

pytestmark = pytest.mark.asyncio


async def test_five_unanswered_requests_from_one_requester_are_the_most(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        await office.issue(citizen)
        rp = basic_auth(await client.services.auth.machines.create("relying_party", name="窗口"))
        other = basic_auth(await client.services.auth.machines.create("relying_party", name="另一窗口"))
        ask = {
            "type": "driving_licence",
            "fields": ["name"],
            "purpose": "核验姓名",
            "id_number": citizen.id_number,
        }
        for _ in range(5):
            assert (await client.post("/api/v1/licences/requests", json=ask, headers=rp)).status_code == 201
        r = await client.post("/api/v1/licences/requests", json=ask, headers=rp)
        assert r.status_code == 409 and r.json()["code"] == "requests_pending"
        # another requester is not held back, and an answer makes room
        assert (await client.post("/api/v1/licences/requests", json=ask, headers=other)).status_code == 201
        first = (await client.get("/api/v1/me/licence-requests?state=pending", headers=citizen.me)).json()[
            "items"
        ]
        mine = [i for i in first if i["requester"]["name"] == "窗口"]
        await client.post(f"/api/v1/me/licence-requests/{mine[0]['id']}/refuse", headers=citizen.me)
        assert (await client.post("/api/v1/licences/requests", json=ask, headers=rp)).status_code == 201


async def test_a_purpose_the_citizen_could_misread_is_refused_and_nothing_is_recorded(open_office):
    async with open_office() as office:
        client = office.client
        citizen = await office.citizen()
        rp = basic_auth(await client.services.auth.machines.create("relying_party", name="窗口"))
        for purpose in ("核验\u202e名姓", "核验\u200b姓名", "核验\x00姓名", "x", "长" * 201, 12):
            ask = {
                "type": "driving_licence",
                "fields": ["name"],
                "purpose": purpose,
                "id_number": citizen.id_number,
            }
            r = await client.post("/api/v1/licences/requests", json=ask, headers=rp)
            assert r.status_code in (400, 422), purpose
            assert r.headers["content-type"].startswith("application/problem+json")
        assert await LicenceRequest.count().run() == 0

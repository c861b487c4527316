"""``shengshi seed-demo`` and the e-licence centre: the demo citizen holds a driving licence and a vehicle
licence from the traffic police, the same after a second run, and can bind and show them."""

from datetime import UTC, datetime

import pytest

from backend.clock import FrozenClock
from backend.seed import seed_demo
from licences import holder

pytestmark = pytest.mark.storage


async def test_the_demo_citizen_holds_two_licences_once(make_client, login):
    clock = FrozenClock(datetime(2026, 11, 30, 2, 0, tzinfo=UTC))
    async with make_client(clock=clock, access_token_ttl=60 * 86400) as client:
        lines = [line for line in await seed_demo(client.app) if line.startswith("licences:")]
        assert lines == [
            "licences: sy-traffic issued the demo citizen's driving_licence (issued)"
            " and vehicle_licence (issued)"
        ]
        again = [line for line in await seed_demo(client.app) if line.startswith("licences:")]
        assert again == [
            "licences: sy-traffic issued the demo citizen's driving_licence (already there)"
            " and vehicle_licence (already there)"
        ]
        pair = await login(client, "13800138000")
        me = {"Authorization": f"Bearer {pair['access_token']}"}
        listed = (await client.get("/api/v1/me/licences", headers=me)).json()
        assert [(i["type"], i["status"]) for i in listed["items"]] == [
            ("driving_licence", "valid"),
            ("vehicle_licence", "valid"),
        ]
        vehicle = listed["items"][1]
        nonce = (await client.post("/api/v1/me/licences/nonce", headers=me)).json()
        key = holder.device_key()
        proof = holder.proof(key, audience=nonce["audience"], nonce=nonce["c_nonce"], iat=int(clock.time()))
        r = await client.post(
            f"/api/v1/me/licences/{vehicle['id']}/credential", json={"proof": proof}, headers=me
        )
        assert r.status_code == 200
        shown = holder.present(
            r.json()["credential"],
            ["plate_number"],
            key,
            audience="urn:shengshitong:inspect",
            iat=int(clock.time()),
        )
        r = await client.post("/api/v1/me/licences/presentations", json={"presentation": shown}, headers=me)
        assert r.status_code == 200 and r.json()["fields"] == ["plate_number"]

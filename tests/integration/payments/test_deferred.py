"""Deferred payment: a mini-app charges later; unpaid totals feed the gates."""

import pytest

from miniapps.contract import Display, Manifest, MiniApp, ScanDecision, ScanEvent

LIMIT = 1000


class RideApp(MiniApp):
    """Ride first, pay after: a flat fare per boarding; refused over the unpaid limit."""

    manifest = Manifest(
        id="ride", name_zh="乘车", name_en="Ride", version="1.0", scan_contexts={"ride-bus": None}
    )

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        payments = self.platform.payments
        if await payments.unpaid_total(scan.openid) >= LIMIT:
            return ScanDecision(
                allow=False, reason="unpaid_fares", display=Display(title="请先补缴车费", color="red")
            )
        order = await payments.create_order(
            openid=scan.openid,
            reference=f"ride-{scan.record_id}",
            amount=400,
            description="公交车费",
            deferred=True,
        )
        return ScanDecision(allow=True, data={"fare": 400, "order_id": order["order_id"]})


@pytest.fixture
async def ride(pay_client, login, new_phone, enrol_scanner, frozen_clock):
    async with pay_client(miniapps=[RideApp], clock=frozen_clock) as client:
        pair = await login(client, new_phone())
        bus = await enrol_scanner(client, "ride", context="ride-bus")
        yield client, {"Authorization": f"Bearer {pair['access_token']}"}, bus, frozen_clock


async def test_rides_are_charged_later_and_unpaid_fares_refuse_boarding(ride):
    client, me, bus, clock = ride
    decisions = []
    for _ in range(4):
        token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
        r = await client.post("/api/v1/scans", json={"token": token}, headers=bus["headers"])
        decisions.append(r.json())
        clock.advance(31)  # the app fetches a new code for the next boarding
    assert [d["result"] for d in decisions] == ["allow", "allow", "allow", "deny"]
    assert decisions[0]["data"]["fare"] == 400 and decisions[-1]["reason"] == "unpaid_fares"
    mine = (await client.get("/api/v1/me/orders", params={"unpaid": "true"}, headers=me)).json()
    assert mine["unpaid_total"] == 1200 and len(mine["items"]) == 3
    # charged against the agreement (the sandbox debits at once): the gate lets the citizen on again
    app = client.services.miniapps.apps["ride"]
    for item in mine["items"]:
        assert (await app.platform.payments.charge(item["order_id"]))["state"] == "paid"
    assert (await client.get("/api/v1/me/orders", params={"unpaid": "true"}, headers=me)).json()[
        "unpaid_total"
    ] == 0
    token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    assert (await client.post("/api/v1/scans", json={"token": token}, headers=bus["headers"])).json()[
        "result"
    ] == "allow"

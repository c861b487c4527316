"""乘车 through HTTP, as a citizen and as scanners: a day of rides up to the cap, a metro trip, the
stated rules for odd trips, transfers, an offline bus batch uploaded twice, and unpaid fares at the gate."""

import asyncio

import pytest


@pytest.fixture
async def city(make_client, frozen_clock, login, new_phone, enrol_scanner, monkeypatch):
    monkeypatch.setenv("SHENGSHI_MINIAPP_TRANSIT", '{"unpaid_limit": 100000}')
    async with make_client(clock=frozen_clock, access_token_ttl=86400) as client:
        app = client.runtime.services["miniapps"].apps["transit"]
        await app.seed_demo()
        pair = await login(client, new_phone())
        me = {"Authorization": f"Bearer {pair['access_token']}"}
        gates = {
            "bus42": await enrol_scanner(client, "transit", context="bus", place="B42"),
            "in1": await enrol_scanner(client, "transit", context="metro-entry", place="M1-01"),
            "out5": await enrol_scanner(client, "transit", context="metro-exit", place="M1-05"),
            "out8": await enrol_scanner(client, "transit", context="metro-exit", place="M1-08"),
        }
        yield client, me, gates, frozen_clock


async def ride(client, me, gate, clock, minutes=1):
    clock.advance(minutes * 60)  # each boarding shows a fresh code
    token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    r = await client.post("/api/v1/scans", json={"token": token}, headers=gate["headers"])
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_day_of_bus_rides_hits_the_daily_cap(city):
    client, me, gates, clock = city
    charged = [
        (await ride(client, me, gates["bus42"], clock, minutes=20))["data"]["charged"] for _ in range(9)
    ]
    assert charged == [200] * 7 + [100, 0]
    fares = (await client.get("/api/v1/apps/transit/fares", headers=me)).json()
    assert fares["spent_today"] == 1500 and fares["unpaid"] == 1500
    trips = (await client.get("/api/v1/apps/transit/trips", headers=me, params={"limit": 50})).json()["items"]
    assert len(trips) == 9 and sum(t["capped"] for t in trips) == 300


async def test_a_metro_trip_is_charged_by_distance_at_the_exit(city):
    client, me, gates, clock = city
    entry = await ride(client, me, gates["in1"], clock)
    assert entry["result"] == "allow" and entry["display"]["title"] == "请进站"
    out = await ride(client, me, gates["out5"], clock, minutes=25)
    assert (
        out["result"] == "allow" and out["data"]["fare"] == 400 and out["data"]["charged"] == 400
    )  # 11.5 km
    far = await ride(client, me, gates["in1"], clock)
    far = await ride(client, me, gates["out8"], clock, minutes=50)
    assert far["data"]["fare"] == 700  # 36 km: 6 yuan to 32 km, 1 more per 20 km started


async def test_odd_trips_follow_the_stated_rules(city):
    client, me, gates, clock = city
    no_entry = await ride(client, me, gates["out5"], clock)
    assert no_entry["result"] == "allow" and no_entry["data"]["rule"] == "no_entry"
    assert no_entry["data"]["fare"] == 1000
    await ride(client, me, gates["in1"], clock, minutes=120)
    again = await ride(client, me, gates["in1"], clock, minutes=5)  # entered again without tapping out
    assert again["result"] == "allow"
    trips = (await client.get("/api/v1/apps/transit/trips", headers=me)).json()["items"]
    assert [t["rule"] for t in trips if t["state"] == "done"] == ["no_exit", "no_entry"]
    assert sum(1 for t in trips if t["state"] == "open") == 1


async def test_a_transfer_from_bus_to_metro_is_discounted(city):
    client, me, gates, clock = city
    await ride(client, me, gates["bus42"], clock)
    await ride(client, me, gates["in1"], clock, minutes=30)
    out = await ride(client, me, gates["out5"], clock, minutes=20)
    assert out["data"]["discount"] == 100 and out["data"]["charged"] == 300


async def test_an_offline_bus_batch_uploaded_twice_is_charged_once(city):
    client, me, gates, clock = city
    records = []
    for i in range(3):
        clock.advance(600)
        token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
        records.append({"record_id": f"bus42-{i}", "token": token, "scanned_at": int(clock.time())})
    clock.advance(3600)  # the bus comes back to the depot
    first = await client.post(
        "/api/v1/scans/batch", json={"records": records[::-1]}, headers=gates["bus42"]["headers"]
    )
    second = await client.post(
        "/api/v1/scans/batch", json={"records": records}, headers=gates["bus42"]["headers"]
    )
    assert [r["result"] for r in first.json()["results"]] == ["allow"] * 3
    assert {r["record_id"]: r["data"] for r in first.json()["results"]} == {
        r["record_id"]: r["data"] for r in second.json()["results"]
    }
    trips = (await client.get("/api/v1/apps/transit/trips", headers=me)).json()["items"]
    assert len(trips) == 3
    orders = (await client.get("/api/v1/me/orders", headers=me)).json()
    assert len(orders["items"]) == 3 and orders["unpaid_total"] == 600


async def test_unpaid_fares_refuse_boarding_until_paid(
    make_client, frozen_clock, login, new_phone, enrol_scanner, monkeypatch
):
    monkeypatch.setenv("SHENGSHI_MINIAPP_TRANSIT", '{"unpaid_limit": 400}')
    async with make_client(clock=frozen_clock, access_token_ttl=86400) as client:
        await client.runtime.services["miniapps"].apps["transit"].seed_demo()
        pair = await login(client, new_phone())
        me = {"Authorization": f"Bearer {pair['access_token']}"}
        bus = await enrol_scanner(client, "transit", context="bus", place="B42")
        out = await enrol_scanner(client, "transit", context="metro-exit", place="M1-05")
        assert (await ride(client, me, bus, frozen_clock))["result"] == "allow"
        assert (await ride(client, me, bus, frozen_clock))["result"] == "allow"
        refused = await ride(client, me, bus, frozen_clock)
        assert refused["result"] == "deny" and refused["reason"] == "unpaid_fares"
        assert refused["display"]["title"] == "请先补缴车费"
        assert (await ride(client, me, out, frozen_clock))["result"] == "allow"  # always let out
        paid = await client.post("/api/v1/apps/transit/fares/pay", headers=me)
        assert paid.status_code == 200 and paid.json()["unpaid"] == 0
        assert (await ride(client, me, bus, frozen_clock))["result"] == "allow"


@pytest.mark.storage
async def test_rides_refused_at_the_gate_leave_no_trip_no_fare_and_the_code_usable(
    make_client, login, new_phone, enrol_scanner, auth_header
):
    from miniapps.transit.tables import TransitLine, TransitTrip
    from payments.tables import PaymentOrder

    async with make_client() as client:
        await client.runtime.services["miniapps"].apps["transit"].seed_demo()
        line = await TransitLine.select(TransitLine.code).where(TransitLine.kind == "bus").first().run()
        bus = await enrol_scanner(client, "transit", context="bus", place=line["code"])
        tokens = []
        for _ in range(8):
            pair = await login(client, new_phone())
            tokens.append(
                (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]
            )
        router = client.runtime.services["miniapps"].router
        router.budget = 1e-6  # no fare engine answers in a microsecond: every boarding overruns

        async def board(token):
            r = await client.post("/api/v1/scans", json={"token": token}, headers=bus["headers"])
            return r.json()

        refused = await asyncio.gather(*(board(t) for t in tokens))
        assert {r["reason"] for r in refused} == {"app_unavailable"}
        await router.settle()  # the abandoned decisions roll back as they finish
        assert await TransitTrip.count().run() == 0
        assert await PaymentOrder.count().run() == 0

        router.budget = 30.0
        boarded = await asyncio.gather(*(board(t) for t in tokens))
        assert {r["result"] for r in boarded} == {"allow"}
        assert await TransitTrip.count().run() == 8
        assert await PaymentOrder.count().where(PaymentOrder.app_id == "transit").run() == 8

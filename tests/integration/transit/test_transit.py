"""乘车 through HTTP, as a citizen and as scanners: a day of rides up to the cap, a metro trip, the
stated rules for odd trips, transfers, an offline bus batch uploaded twice, and unpaid fares at the gate."""

import asyncio

import pytest


@pytest.fixture
async def city(make_client, frozen_clock, login, new_phone, enrol_scanner, monkeypatch):
    monkeypatch.setenv("SHENGSHI_MINIAPP_TRANSIT", '{"unpaid_limit": 100000}')
    async with make_client(clock=frozen_clock, access_token_ttl=86400) as client:
        app = client.services.miniapps.apps["transit"]
        await app.seed_demo()
        pair = await login(client, new_phone())
        me = {"Authorization": f"Bearer {pair['access_token']}"}
        gates = {
            "bus": await enrol_scanner(client, "transit", context="bus", place="B113"),
            # 地铁1号线 十三号街 in; out at 迎宾路 (9.4 km on line 1) or 全运路 (line 2, via 青年大街)
            "in1": await enrol_scanner(client, "transit", context="metro-entry", place="M1-01"),
            "out_near": await enrol_scanner(client, "transit", context="metro-exit", place="M1-08"),
            "out_far": await enrol_scanner(client, "transit", context="metro-exit", place="M2-19"),
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
    charged = [(await ride(client, me, gates["bus"], clock, minutes=20))["data"]["charged"] for _ in range(9)]
    assert charged == [200] * 7 + [100, 0]
    fares = (await client.get("/api/v1/apps/transit/fares", headers=me)).json()
    assert fares["spent_today"] == 1500 and fares["unpaid"] == 1500
    trips = (await client.get("/api/v1/apps/transit/trips", headers=me, params={"limit": 50})).json()["items"]
    assert len(trips) == 9 and sum(t["capped"] for t in trips) == 300


async def test_a_metro_trip_is_charged_by_distance_at_the_exit(city):
    client, me, gates, clock = city
    entry = await ride(client, me, gates["in1"], clock)
    assert entry["result"] == "allow" and entry["display"]["title"] == "请进站"
    out = await ride(client, me, gates["out_near"], clock, minutes=25)
    assert out["result"] == "allow" and out["data"]["fare"] == 400 and out["data"]["charged"] == 400  # 9.4 km
    far = await ride(client, me, gates["in1"], clock)
    far = await ride(client, me, gates["out_far"], clock, minutes=50)
    # to 青年大街 on line 1 (20.0 km), then line 2 from 青年大街 to 全运路 (11.5 km): 31.5 km, 6 yuan
    assert far["data"]["fare"] == 600


def test_metro_fares_and_distances_between_lines():
    from miniapps.transit.app import metro_distance, metro_fare

    assert [metro_fare(m, 1000) for m in (0, 6000, 6001, 12000, 22000, 32000, 36000, 52001)] == [
        300,
        300,
        400,
        400,
        500,
        600,
        700,
        800,
    ]
    assert metro_fare(200_000, 1000) == 1000  # at most the maximum fare
    assert metro_distance(("M1", 0), ("M1", 9400), []) == 9400
    # two interchanges: the shorter way counts
    assert metro_distance(("M1", 0), ("M2", 21600), [(20000, 10100), (5000, 2000)]) == 5000 + 19600
    assert metro_distance(("M1", 0), ("M3", 100), []) is None  # lines that do not meet


async def test_odd_trips_follow_the_stated_rules(city):
    client, me, gates, clock = city
    no_entry = await ride(client, me, gates["out_near"], clock)
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
    await ride(client, me, gates["bus"], clock)
    await ride(client, me, gates["in1"], clock, minutes=30)
    out = await ride(client, me, gates["out_near"], clock, minutes=20)
    assert out["data"]["discount"] == 100 and out["data"]["charged"] == 300


async def test_an_offline_bus_batch_uploaded_twice_is_charged_once(city):
    client, me, gates, clock = city
    records = []
    for i in range(3):
        clock.advance(600)
        token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
        records.append({"record_id": f"bus113-{i}", "token": token, "scanned_at": int(clock.time())})
    clock.advance(3600)  # the bus comes back to the depot
    first = await client.post(
        "/api/v1/scans/batch", json={"records": records[::-1]}, headers=gates["bus"]["headers"]
    )
    second = await client.post(
        "/api/v1/scans/batch", json={"records": records}, headers=gates["bus"]["headers"]
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
        await client.services.miniapps.apps["transit"].seed_demo()
        pair = await login(client, phone := new_phone())
        me = {"Authorization": f"Bearer {pair['access_token']}"}
        bus = await enrol_scanner(client, "transit", context="bus", place="B237")
        out = await enrol_scanner(client, "transit", context="metro-exit", place="M2-04")  # 北陵公园
        assert (await ride(client, me, bus, frozen_clock))["result"] == "allow"
        # the same citizen's other phone shows a code issued while still in good standing
        other = {
            "Authorization": f"Bearer {(await login(client, phone, device_id='phone-2'))['access_token']}"
        }
        frozen_clock.advance(20)
        earlier = (await client.get("/api/v1/codes/current", headers=other)).json()["token"]
        assert (await ride(client, me, bus, frozen_clock))["result"] == "allow"  # ¥4 owed: the limit
        # the code from before still claims it (signed, within its validity): transit refuses it itself
        r = await client.post("/api/v1/scans", json={"token": earlier}, headers=bus["headers"])
        refused = r.json()
        assert refused["result"] == "deny" and refused["reason"] == "unpaid_fares"
        assert refused["display"]["title"] == "请先补缴车费"
        # a code issued since lacks transit: the platform refuses it before transit is asked
        lacking = await ride(client, me, bus, frozen_clock)
        assert (lacking["result"], lacking["reason"]) == ("deny", "not_entitled")
        assert lacking["data"] == {"required": "transit", "status": "refused"}
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
        await client.services.miniapps.apps["transit"].seed_demo()
        line = await TransitLine.select(TransitLine.code).where(TransitLine.kind == "bus").first().run()
        bus = await enrol_scanner(client, "transit", context="bus", place=line["code"])
        tokens = []
        for _ in range(8):
            pair = await login(client, new_phone())
            tokens.append(
                (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]
            )
        router = client.services.miniapps.gate
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


async def test_lines_and_trips_page_to_the_end(city, walk_pages):
    from miniapps.transit.tables import TransitLine

    client, me, gates, clock = city
    lines = await walk_pages(client, "/api/v1/apps/transit/lines", limit=2)
    assert len(lines) == await TransitLine.count()
    metro = {line["code"]: line for line in lines if line["kind"] == "metro"}
    assert [s["name"] for s in metro["M1"]["stations"]][:2] == ["十三号街", "中央大街"]
    assert [s["km"] for s in metro["M2"]["stations"]] == sorted(s["km"] for s in metro["M2"]["stations"])
    for _ in range(5):
        await ride(client, me, gates["bus"], clock, minutes=10)
    trips = await walk_pages(client, "/api/v1/apps/transit/trips", limit=2, headers=me)
    assert len({t["trip_id"] for t in trips}) == 5


@pytest.mark.storage
async def test_twin_attempts_of_one_record_take_effect_once_and_keep_the_code_used(
    make_client, login, new_phone, enrol_scanner, auth_header
):
    """A terminal that sends one record twice at once (an upload, or an online scan and its retry): one
    trip, one fare, the same answer to both, and the code still used up for every other bus."""
    from miniapps.transit.tables import TransitLine, TransitTrip

    async with make_client() as client:
        await client.services.miniapps.apps["transit"].seed_demo()
        lines = await TransitLine.select(TransitLine.code).where(TransitLine.kind == "bus").run()
        bus = await enrol_scanner(client, "transit", context="bus", place=lines[0]["code"])
        other_bus = await enrol_scanner(client, "transit", context="bus", place=lines[1]["code"])

        async def code():
            pair = await login(client, new_phone())
            return (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]

        # an offline upload sent twice at once
        token, now = await code(), int(client.runtime.clock.time())
        upload = {"records": [{"record_id": "up-0", "token": token, "scanned_at": now}]}
        answers = await asyncio.gather(
            *(client.post("/api/v1/scans/batch", json=upload, headers=bus["headers"]) for _ in range(2))
        )
        assert [a.json()["results"][0]["reason"] for a in answers] == ["ok", "ok"]
        later = await client.post("/api/v1/scans", json={"token": token}, headers=other_bus["headers"])
        assert later.json()["reason"] == "replayed"

        # an online scan sent three times at once, for several riders
        for i in range(5):
            token = await code()
            body = {"token": token, "record_id": f"on-{i}"}
            answers = await asyncio.gather(
                *(client.post("/api/v1/scans", json=body, headers=bus["headers"]) for _ in range(3))
            )
            assert {a.json()["reason"] for a in answers} == {"ok"}
            assert len({a.json()["data"]["trip_id"] for a in answers}) == 1
            other = await client.post("/api/v1/scans", json={"token": token}, headers=other_bus["headers"])
            assert other.json()["reason"] == "replayed"
            again = await client.post("/api/v1/scans", json=body, headers=bus["headers"])
            assert again.json() == answers[0].json()
        await client.services.miniapps.gate.settle()
        assert await TransitTrip.count().run() == 6

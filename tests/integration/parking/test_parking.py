"""好停车 through HTTP: live spaces, reservations, barrier scans, fees across the daily maximum, a full
car park, and concurrent entries at the last space."""

import asyncio
from datetime import timedelta

import pytest

from miniapps.parking.app import parking_fee
from miniapps.parking.tables import CarPark


@pytest.fixture
async def lot(make_client, frozen_clock, login, new_phone, enrol_scanner):
    async with make_client(clock=frozen_clock, access_token_ttl=7 * 86400) as client:
        await client.services.miniapps.apps["parking"].seed_demo()

        async def citizen():
            pair = await login(client, new_phone())
            return {"Authorization": f"Bearer {pair['access_token']}"}

        gates = {
            "in": await enrol_scanner(client, "parking", context="parking-entry", place="P-HOSPITAL"),
            "out": await enrol_scanner(client, "parking", context="parking-exit", place="P-HOSPITAL"),
            "gm_in": await enrol_scanner(client, "parking", context="parking-entry", place="P-TAIYUAN"),
            "gm_out": await enrol_scanner(client, "parking", context="parking-exit", place="P-TAIYUAN"),
        }
        yield client, citizen, gates, frozen_clock


async def scan(client, me, gate, clock, plate="辽A12345", advance=31):
    clock.advance(advance)
    token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    r = await client.post(
        "/api/v1/scans", json={"token": token, "meta": {"plate": plate}}, headers=gate["headers"]
    )
    assert r.status_code == 200, r.text
    return r.json()


async def free(client, code):
    parks = (await client.get("/api/v1/apps/parking/car-parks")).json()["items"]
    return next(p["free"] for p in parks if p["code"] == code)


def test_the_tariff():
    from datetime import UTC, datetime

    t0 = datetime(2026, 11, 25, 8, tzinfo=UTC)

    def fee(minutes):
        return parking_fee(
            t0,
            t0 + timedelta(minutes=minutes),
            free_minutes=15,
            hourly_rate=1000,
            daily_max=8000,
        )

    assert [fee(10), fee(15), fee(16), fee(61), fee(9 * 60), fee(24 * 60), fee(24 * 60 + 61)] == [
        0,
        0,
        1000,
        2000,
        8000,
        8000,
        10000,
    ]


async def test_a_stay_across_the_daily_maximum_is_charged_after_leaving(lot):
    client, citizen, gates, clock = lot
    me = await citizen()
    before = await free(client, "P-TAIYUAN")
    entered = await scan(client, me, gates["gm_in"], clock)
    assert entered["result"] == "allow" and await free(client, "P-TAIYUAN") == before - 1
    left = await scan(
        client, me, gates["gm_out"], clock, advance=int(timedelta(hours=26, minutes=5).total_seconds())
    )
    assert (
        left["result"] == "allow" and left["data"]["fee"] == 6000 + 3 * 800
    )  # a day at most ¥60, then ¥8 an hour started
    assert left["display"]["subtitle"] == "停车费 ¥84.00"
    assert await free(client, "P-TAIYUAN") == before
    sessions = (await client.get("/api/v1/apps/parking/sessions", headers=me)).json()["items"]
    assert (
        sessions[0]["plate"] == "辽A12345" and sessions[0]["fee"] == 8400 and sessions[0]["state"] == "closed"
    )
    orders = (await client.get("/api/v1/me/orders", params={"unpaid": "true"}, headers=me)).json()
    assert orders["unpaid_total"] == 8400 and orders["items"][0]["deferred"] is True


async def test_a_full_car_park_refuses_entry_and_reservations(lot):
    client, citizen, gates, clock = lot
    a, b, c = await citizen(), await citizen(), await citizen()
    assert (await scan(client, a, gates["in"], clock))["result"] == "allow"
    assert (await scan(client, b, gates["in"], clock))["result"] == "allow"
    full = await scan(client, c, gates["in"], clock)
    assert full["result"] == "deny" and full["reason"] == "car_park_full"
    assert await free(client, "P-HOSPITAL") == 0
    r = await client.post(
        "/api/v1/apps/parking/reservations",
        headers=c,
        json={"car_park": "P-HOSPITAL", "plate": "辽A0C001", "starts_at": clock.now().isoformat()},
    )
    assert r.status_code == 409 and r.json()["code"] == "car_park_full"
    assert (await scan(client, a, gates["out"], clock))["result"] == "allow"
    assert (await scan(client, c, gates["in"], clock))["result"] == "allow"
    assert (await scan(client, c, gates["in"], clock))["reason"] == "already_inside"


async def test_concurrent_entries_at_the_last_space_admit_one(lot):
    client, citizen, gates, clock = lot
    first = await citizen()
    assert (await scan(client, first, gates["in"], clock))["result"] == "allow"
    drivers = [await citizen() for _ in range(6)]
    clock.advance(31)
    tokens = [(await client.get("/api/v1/codes/current", headers=d)).json()["token"] for d in drivers]
    results = await asyncio.gather(
        *(client.post("/api/v1/scans", json={"token": t}, headers=gates["in"]["headers"]) for t in tokens)
    )
    decisions = [r.json()["result"] for r in results]
    assert decisions.count("allow") == 1 and decisions.count("deny") == 5
    park = await CarPark.select().where(CarPark.code == "P-HOSPITAL").first().run()
    assert park["occupied"] == park["capacity"] == 2


async def test_a_reservation_holds_a_space_then_expires(lot):
    client, citizen, gates, clock = lot
    holder, other = await citizen(), await citizen()
    start = clock.now() + timedelta(minutes=10)
    r = await client.post(
        "/api/v1/apps/parking/reservations",
        headers=holder,
        json={"car_park": "P-HOSPITAL", "plate": "辽A88888", "starts_at": start.isoformat()},
    )
    assert r.status_code == 201, r.text
    assert await free(client, "P-HOSPITAL") == 1
    assert (await scan(client, other, gates["in"], clock))["result"] == "allow"
    assert (await scan(client, await citizen(), gates["in"], clock))["reason"] == "car_park_full"
    came = await scan(client, holder, gates["in"], clock)  # the held space is theirs
    assert came["result"] == "allow" and came["data"]["reserved"] is True
    # a second reservation that nobody honours is released after the grace period
    await scan(client, other, gates["out"], clock)
    late = await client.post(
        "/api/v1/apps/parking/reservations",
        headers=other,
        json={"car_park": "P-HOSPITAL", "plate": "辽AD1234", "starts_at": clock.now().isoformat()},
    )
    assert late.status_code == 201 and await free(client, "P-HOSPITAL") == 0
    clock.advance(31 * 60)
    assert await free(client, "P-HOSPITAL") == 1
    states = {
        r["plate"]: r["state"]
        for r in (await client.get("/api/v1/apps/parking/reservations", headers=other)).json()["items"]
    }
    assert states == {"辽AD1234": "expired"}
    # cancelling frees the space at once
    again = await client.post(
        "/api/v1/apps/parking/reservations",
        headers=other,
        json={"car_park": "P-HOSPITAL", "plate": "辽AD1234", "starts_at": clock.now().isoformat()},
    )
    assert await free(client, "P-HOSPITAL") == 0
    rid = again.json()["reservation_id"]
    assert (await client.delete(f"/api/v1/apps/parking/reservations/{rid}", headers=other)).status_code == 204
    assert await free(client, "P-HOSPITAL") == 1
    assert (await client.delete(f"/api/v1/apps/parking/reservations/{rid}", headers=other)).status_code == 404


async def test_car_parks_reservations_and_stays_page_to_the_end(lot, walk_pages):
    client, citizen, gates, clock = lot
    parks = await walk_pages(client, "/api/v1/apps/parking/car-parks", limit=4)
    assert len({p["code"] for p in parks}) == await CarPark.count() > 4
    in_district = await walk_pages(
        client, "/api/v1/apps/parking/car-parks", limit=1, params={"district": "和平区"}
    )
    assert {p["district"] for p in in_district} == {"和平区"} and len(in_district) == 2
    me = await citizen()
    for code in ("P-ZHONGJIE", "P-TAIYUAN", "P-BEILING"):
        r = await client.post(
            "/api/v1/apps/parking/reservations",
            headers=me,
            json={"car_park": code, "plate": "辽A12345", "starts_at": clock.now().isoformat()},
        )
        assert r.status_code == 201, r.text
    reservations = await walk_pages(client, "/api/v1/apps/parking/reservations", limit=2, headers=me)
    assert sorted(r["car_park"] for r in reservations) == ["P-BEILING", "P-TAIYUAN", "P-ZHONGJIE"]
    for _ in range(3):
        await scan(client, me, gates["gm_in"], clock)
        await scan(client, me, gates["gm_out"], clock, advance=600)
    stays = await walk_pages(client, "/api/v1/apps/parking/sessions", limit=2, headers=me)
    assert len(stays) == 3 and {s["state"] for s in stays} == {"closed"}

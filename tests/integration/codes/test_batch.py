"""Offline terminals upload scans later: idempotent per (scanner, record id); a code seen on two
scanners is flagged, not accepted twice."""

import pytest

from miniapps.tables import ScanRecord


@pytest.fixture
async def env(make_client, frozen_clock, login, new_phone, enrol_scanner):
    async with make_client(clock=frozen_clock) as client:
        pair = await login(client, new_phone())
        bus_a = await enrol_scanner(client, context="testgate-bus", place="bus 42")
        bus_b = await enrol_scanner(client, context="testgate-bus", place="bus 7")
        yield client, pair, bus_a, bus_b, frozen_clock


async def _code(client, pair):
    r = await client.get("/api/v1/codes/current", headers={"Authorization": f"Bearer {pair['access_token']}"})
    return r.json()["token"]


async def _upload(client, scanner, records):
    r = await client.post("/api/v1/scans/batch", json={"records": records}, headers=scanner["headers"])
    assert r.status_code == 200, r.text
    return r.json()["results"]


async def test_uploaded_twice_decided_once(env):
    client, pair, bus_a, _, clock = env
    token = await _code(client, pair)
    scanned = int(clock.time()) + 5
    clock.advance(3 * 3600)  # the bus uploads at the end of its shift, long after the code expired
    records = [{"record_id": "a-1", "token": token, "scanned_at": scanned}]
    first = await _upload(client, bus_a, records)
    assert first[0]["result"] == "allow" and first[0]["flagged"] is False
    again = await _upload(client, bus_a, records)
    assert again == first
    rows = await ScanRecord.select().where(ScanRecord.scanner_id == bus_a["client_id"]).run()
    assert len(rows) == 1 and rows[0]["offline"] is True


async def test_one_code_on_two_buses_is_flagged(env):
    client, pair, bus_a, bus_b, clock = env
    token = await _code(client, pair)
    at = int(clock.time()) + 1
    clock.advance(600)
    a = await _upload(client, bus_a, [{"record_id": "a-9", "token": token, "scanned_at": at}])
    b = await _upload(client, bus_b, [{"record_id": "b-3", "token": token, "scanned_at": at + 20}])
    assert a[0]["result"] == "allow"
    assert b[0]["result"] == "deny" and b[0]["reason"] == "replayed" and b[0]["flagged"] is True
    flagged = await ScanRecord.select().where(ScanRecord.flagged == True).run()  # noqa: E712
    assert [r["scanner_id"] for r in flagged] == [bus_b["client_id"]]


async def test_a_code_used_online_is_caught_in_a_later_batch(env):
    client, pair, bus_a, bus_b, clock = env
    token = await _code(client, pair)
    online = await client.post("/api/v1/scans", json={"token": token}, headers=bus_a["headers"])
    assert online.json()["result"] == "allow"
    clock.advance(7200)
    r = await _upload(
        client, bus_b, [{"record_id": "b-1", "token": token, "scanned_at": int(clock.time()) - 7190}]
    )
    assert r[0]["reason"] == "replayed" and r[0]["flagged"] is True


async def test_scan_times_are_checked_against_the_code(env):
    client, pair, bus_a, _, clock = env
    token = await _code(client, pair)
    now = int(clock.time())
    clock.advance(1000)  # uploaded a while later
    results = await _upload(
        client,
        bus_a,
        [
            {
                "record_id": "late",
                "token": token,
                "scanned_at": now + 500,
            },  # the code had expired at scan time
            {"record_id": "future", "token": token, "scanned_at": now + 3600},  # scanned in the future
            {"record_id": "ancient", "token": token, "scanned_at": now - 3 * 86400},
            {"record_id": "junk", "token": "SC1:nope", "scanned_at": now},
        ],
    )
    assert [r["reason"] for r in results] == ["expired", "bad_scan_time", "bad_scan_time", "bad_base45"]


async def test_bad_batches_are_refused_whole(env):
    client, _, bus_a, _, _ = env
    for body in (
        {"records": []},
        {"records": [{"record_id": "x"}]},
        {"records": "nope"},
        {"records": [{"record_id": "a b", "token": "t", "scanned_at": 1}]},
        {"records": [{"record_id": str(i), "token": "t", "scanned_at": 1} for i in range(501)]},
    ):
        r = await client.post("/api/v1/scans/batch", json=body, headers=bus_a["headers"])
        assert r.status_code == 400, body
    assert await ScanRecord.count().run() == 0

"""The live dashboard's figures: scans per mini-app, refusals, latency, payments, backlog, free spaces;
and the channel that carries every worker's ticks to every viewer."""

import asyncio
import json
import re

import pytest

from console.dashboard import BUCKETS_MS, ScanTally, quantile
from miniapps.parking.demo import seed as seed_parking_demo

pytestmark = pytest.mark.storage

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
LATIN = re.compile(r"[A-Za-z]")


def test_quantiles_come_from_the_buckets():
    buckets = [0] * (len(BUCKETS_MS) + 1)
    buckets[BUCKETS_MS.index(10)] = 98  # 98 scans in (5, 10] ms
    buckets[BUCKETS_MS.index(200)] = 2  # 2 in (100, 200] ms
    assert 5 < quantile(buckets, 0.5) <= 10
    assert 100 < quantile(buckets, 0.99) <= 200
    assert quantile([0] * len(buckets), 0.5) is None


def test_the_tally_counts_offline_scans_without_latency():
    from backend.runtime import ScanSeen

    tally = ScanTally()
    tally(ScanSeen("transit", "allow", "ok", 0.004, False))
    tally(ScanSeen("transit", "deny", "replayed", 0.0, True))
    counts = tally.take()
    assert counts == {"s|transit|allow": 1, "s|transit|deny": 1, "r|replayed": 1, "l|2": 1}
    assert tally.take() == {}


async def _scans(client, login, new_phone, auth_header, gate, n):
    results = []
    for _ in range(n):
        pair = await login(client, new_phone())
        token = (await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"]
        r = await client.post("/api/v1/scans", json={"token": token}, headers=gate["headers"])
        results.append(r.json()["result"])
        r = await client.post("/api/v1/scans", json={"token": token}, headers=gate["headers"])  # replayed
        results.append(r.json()["reason"])
    return results


async def test_scans_show_on_the_dashboard_by_mini_app_with_refusals_and_latency(
    client, console_login, login, new_phone, auth_header, enrol_scanner
):
    await console_login(client, "watcher", "readonly")
    gate = await enrol_scanner(client)
    before = (await client.get("/admin/dashboard/frame")).json()
    assert before["scans"]["total"] == 0
    assert await _scans(client, login, new_phone, auth_header, gate, 3) == ["allow", "replayed"] * 3
    await client.services.console.dashboard.flush()
    client.services.console.dashboard._frame = None  # not the cached frame of a second ago
    frame = (await client.get("/admin/dashboard/frame")).json()
    assert frame["scans"]["total"] == 6
    assert frame["scans"]["allowed"] == 3 and frame["scans"]["denied"] == 3
    (app,) = frame["scans"]["per_app"]
    assert app["app_id"] == "testgate" and sum(app["counts"]) == 6 and len(app["counts"]) == 30
    assert frame["refusals"] == [
        {"reason": "replayed", "label_zh": "此码已使用", "label_en": "Code already used", "count": 3}
    ]
    assert frame["latency_ms"]["samples"] == 6
    assert 0 < frame["latency_ms"]["p50"] <= frame["latency_ms"]["p99"]


async def test_free_parking_spaces_come_from_the_parking_mini_app(client, console_login):
    from miniapps.parking.demo import seed as seed_parking
    from miniapps.parking.tables import CarPark

    await seed_parking()
    await CarPark.update({CarPark.occupied: 7}).where(CarPark.code == "P-ZHONGJIE")
    await console_login(client, "watcher", "readonly")
    frame = (await client.get("/admin/dashboard/frame")).json()
    parks = {g["name"]: g for g in frame["gauges"] if g["app_id"] == "parking"}
    park = await CarPark.select().where(CarPark.code == "P-ZHONGJIE").first()
    assert parks["free_spaces:P-ZHONGJIE"]["value"] == park["capacity"] - 7 - park["reserved"]
    assert parks["free_spaces:P-ZHONGJIE"]["of"] == park["capacity"]


async def test_each_free_spaces_label_is_in_one_language(client, console_login):
    """The Chinese screen reads 北陵公园停车场 空余车位, the English one Beiling Park Car Park: free spaces —
    never both languages in one label."""
    await seed_parking_demo()
    await console_login(client, "watcher", "readonly")
    frame = (await client.get("/admin/dashboard/frame")).json()
    gauges = {g["name"]: g for g in frame["gauges"] if g["app_id"] == "parking"}
    assert len(gauges) == 6
    for g in gauges.values():
        assert CJK.search(g["label_zh"]) and not LATIN.search(g["label_zh"]), g
        assert LATIN.search(g["label_en"]) and not CJK.search(g["label_en"]), g
    beiling = gauges["free_spaces:P-BEILING"]
    assert (beiling["label_zh"], beiling["label_en"]) == (
        "北陵公园停车场 空余车位",
        "Beiling Park Car Park: free spaces",
    )


async def test_the_dashboard_needs_a_console_session(client):
    for path in ("/admin/dashboard/frame", "/admin/dashboard/stream", "/admin/scanner/scanners"):
        r = await client.get(path)
        assert r.status_code == 401, path
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/admin/dashboard", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"] == "/admin/"


async def test_every_workers_ticks_reach_every_viewer(
    make_client, make_runtime, settings, console_login, login, new_phone, auth_header, enrol_scanner
):
    """Two app instances (two workers); scans on one, the other's viewers hear the tick and see the
    counts. With the in-process store there is one worker only, so both roles are played by one."""
    async with make_client() as a:
        if settings.uses_redis:
            from backend.store import RedisStore

            # a second worker: same database, same Redis namespace (starting it empties the tables)
            shared = RedisStore(settings.redis_url, prefix=a.runtime.store._prefix)
            async with make_client(runtime=make_runtime(store=shared)) as b:
                gate = await enrol_scanner(a)
                await _ticks(a, b, gate, console_login, login, new_phone, auth_header)
        else:
            gate = await enrol_scanner(a)
            await _ticks(a, a, gate, console_login, login, new_phone, auth_header)


async def _ticks(a, b, gate, console_login, login, new_phone, auth_header):
    viewer = b.services.console
    async with viewer.channels.start_subscription([viewer.dashboard.channel]) as subscriber:
        await asyncio.sleep(0.2)  # the subscription is registered with Redis
        await _scans(a, login, new_phone, auth_header, gate, 2)
        await a.services.console.dashboard.flush()
        tick = await asyncio.wait_for(anext(subscriber.iter_events()), 5)
    assert json.loads(tick)["scans"] == 4
    await console_login(b, "viewer", "readonly")
    frame = (await b.get("/admin/dashboard/frame")).json()
    assert frame["scans"]["total"] == 4


async def test_a_stream_sends_frames_and_ends_when_the_session_does(client, monkeypatch):
    from console import dashboard

    monkeypatch.setattr(dashboard, "SESSION_RECHECK", 0.0)
    console = client.services.console
    signed_in = [True]

    async def check():
        return signed_in[0]

    frames = console.dashboard.stream(check)
    event, first = await anext(frames)
    assert event == "frame" and first["scans"]["total"] == 0
    event, _ = await asyncio.wait_for(anext(frames), 10)  # the push interval, with nothing happening
    assert event == "frame"
    signed_in[0] = False  # disabled, signed out or expired
    event, _ = await asyncio.wait_for(anext(frames), 10)
    assert event == "signed-out"
    with pytest.raises(StopAsyncIteration):
        await anext(frames)

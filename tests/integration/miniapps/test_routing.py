"""A mini-app that raises or overruns its budget yields deny/app_unavailable within the budget, while
another mini-app keeps answering; scans land in the citizen's history."""

import asyncio
import time

import pytest

from miniapps.contract import Manifest, MiniApp, ScanDecision, ScanEvent


class BrokenApp(MiniApp):
    manifest = Manifest(
        id="broken", name_zh="坏", name_en="Broken", version="1.0", scan_contexts={"broken-gate": None}
    )

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        raise RuntimeError("the mini-app's database is down")


class SlowApp(MiniApp):
    manifest = Manifest(
        id="slow", name_zh="慢", name_en="Slow", version="1.0", scan_contexts={"slow-gate": None}
    )

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")


class PickyApp(MiniApp):
    manifest = Manifest(
        id="picky", name_zh="挑剔", name_en="Picky", version="1.0", scan_contexts={"picky-gate": None}
    )

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        return ScanDecision(allow=False, reason="no_ticket")


@pytest.fixture
async def apps(make_client, login, new_phone, enrol_scanner, testgate_app):
    async with make_client(
        miniapps=[testgate_app, BrokenApp, SlowApp, PickyApp], miniapp_scan_budget=0.05
    ) as client:
        pair = await login(client, new_phone())
        gates = {
            name: await enrol_scanner(client, name, context=f"{name}-gate")
            for name in ("broken", "slow", "picky")
        }
        gates["testgate"] = await enrol_scanner(client, "testgate", context="testgate")
        yield client, pair, gates


async def _fresh_code(client, pair, clock_advance=None):
    r = await client.get("/api/v1/codes/current", headers={"Authorization": f"Bearer {pair['access_token']}"})
    return r.json()["token"]


async def test_failing_and_slow_apps_are_contained(apps):
    client, pair, gates = apps
    token = await _fresh_code(client, pair)
    started = time.perf_counter()
    slow = await client.post("/api/v1/scans", json={"token": token}, headers=gates["slow"]["headers"])
    assert time.perf_counter() - started < 2  # the 50 ms budget, plus the test's own overhead
    broken = await client.post("/api/v1/scans", json={"token": token}, headers=gates["broken"]["headers"])
    fine = await client.post("/api/v1/scans", json={"token": token}, headers=gates["testgate"]["headers"])
    for r in (slow, broken):
        assert r.status_code == 200
        assert r.json()["result"] == "deny" and r.json()["reason"] == "app_unavailable"
        assert "the mini-app's database is down" not in r.text
    assert fine.json()["result"] == "allow"


async def test_a_mini_app_may_refuse_with_its_own_reason(apps):
    client, pair, gates = apps
    r = await client.post(
        "/api/v1/scans", json={"token": await _fresh_code(client, pair)}, headers=gates["picky"]["headers"]
    )
    assert r.json()["result"] == "deny" and r.json()["reason"] == "no_ticket"
    assert r.json()["display"]["color"] == "red"


async def test_a_scanner_of_an_app_that_is_not_enabled(apps, enrol_scanner):
    client, pair, _ = apps
    orphan = await enrol_scanner(client, "gone", context="gone-gate")
    r = await client.post(
        "/api/v1/scans", json={"token": await _fresh_code(client, pair)}, headers=orphan["headers"]
    )
    assert r.json()["reason"] == "app_unavailable"


async def test_batch_uploads_are_routed_too(apps):
    client, pair, gates = apps
    token = await _fresh_code(client, pair)
    now = int(client.runtime.clock.time())
    r = await client.post(
        "/api/v1/scans/batch",
        json={"records": [{"record_id": "r1", "token": token, "scanned_at": now}]},
        headers=gates["testgate"]["headers"],
    )
    result = r.json()["results"][0]
    assert result["result"] == "allow" and result["data"]["offline"] is True


async def test_scan_history_for_the_citizen(apps):
    client, pair, gates = apps
    token = await _fresh_code(client, pair)
    await client.post("/api/v1/scans", json={"token": token}, headers=gates["testgate"]["headers"])
    await client.post("/api/v1/scans", json={"token": token}, headers=gates["picky"]["headers"])
    await client.services.miniapps.gate.records.history.flush()
    r = await client.get("/api/v1/me/scans", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert r.status_code == 200
    items = r.json()["items"]
    assert {(i["app_id"], i["result"], i["reason"]) for i in items} == {
        ("testgate", "allow", "ok"),
        ("picky", "deny", "no_ticket"),
    }
    assert {i["app_name_en"] for i in items} == {"Test gate", "Picky"}
    # another citizen sees none of them
    assert (await client.get("/api/v1/me/scans")).status_code == 401

"""A scan's decision and the mini-app's writes are one: a decision the gate did not receive leaves no
effect and gives the code's single use back; a retried record gets its stored answer without the mini-app
being asked again; the budget is the mini-app's own time, not the time spent queueing for the database;
offline uploads are not under the online budget. The races are the point on PostgreSQL."""

import asyncio
import uuid

import pytest
from piccolo.engine.postgres import PostgresEngine

from backend import db
from miniapps.contract import Manifest, MiniApp, ScanDecision, ScanEvent
from miniapps.schemas import ScanRequest
from payments.tables import PaymentOrder

pytestmark = pytest.mark.storage
BUDGET = 0.2


class ChargingApp(MiniApp):
    """Creates a deferred order for every scan (like a fare), then decides; ``mode`` is set by the test:
    ``fast``; ``slow`` (decides after three budgets); ``fail`` (raises after writing)."""

    manifest = Manifest(
        id="charging",
        name_zh="计费",
        name_en="Charging",
        version="1.0",
        scan_contexts={"charging-gate": None},
    )
    mode = "fast"
    calls = 0
    deciding: asyncio.Event | None = None  # set when on_scan starts, for a test that waits for it

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        type(self).calls += 1
        if self.deciding is not None:
            self.deciding.set()
        order = await self.platform.payments.create_order(
            openid=scan.openid, reference=f"ride-{uuid.uuid4().hex}", amount=200, deferred=True
        )
        if self.mode == "slow":
            await asyncio.sleep(3 * BUDGET)
        if self.mode == "fail":
            raise RuntimeError("the fare service fell over after writing")
        return ScanDecision(allow=True, data={"order_id": order["order_id"]})


@pytest.fixture
async def gate(make_client, login, new_phone, enrol_scanner, auth_header):
    ChargingApp.mode, ChargingApp.calls, ChargingApp.deciding = "fast", 0, None
    async with make_client(miniapps=[ChargingApp], miniapp_scan_budget=BUDGET, db_pool_max=4) as client:
        scanner = await enrol_scanner(client, "charging", context="charging-gate")

        async def new_code() -> str:
            pair = await login(client, new_phone())
            r = await client.get("/api/v1/codes/current", headers=auth_header(pair))
            return str(r.json()["token"])

        yield client, scanner, new_code


async def scan(client, scanner, token, **extra):
    r = await client.post("/api/v1/scans", json={"token": token, **extra}, headers=scanner["headers"])
    assert r.status_code == 200, r.text
    return r.json()


async def orders() -> int:
    return await PaymentOrder.count().where(PaymentOrder.app_id == "charging").run()


async def settled(client) -> None:
    """Wait until every abandoned decision has rolled back (they finish on their own)."""
    await asyncio.wait_for(client.services.miniapps.gate.settle(), timeout=30)


async def test_a_decision_the_gate_did_not_get_leaves_nothing_and_the_code_stays_usable(gate):
    client, scanner, new_code = gate
    tokens = [await new_code() for _ in range(6)]
    ChargingApp.mode = "slow"
    answers = await asyncio.gather(*(scan(client, scanner, t) for t in tokens))
    assert [a["reason"] for a in answers] == ["app_unavailable"] * 6
    await settled(client)
    assert await orders() == 0  # no fare for a ride the gate refused
    # the gate's "try again" (a new scan of the same code) passes: the code was not used up
    ChargingApp.mode = "fast"
    again = await asyncio.gather(*(scan(client, scanner, t) for t in tokens))
    assert [a["result"] for a in again] == ["allow"] * 6
    assert await orders() == 6
    assert {a["data"]["order_id"] for a in again} == {
        str(r["id"]) for r in await PaymentOrder.select(PaymentOrder.id).run()
    }


async def test_a_failing_mini_app_writes_nothing_and_gives_the_code_back(gate):
    client, scanner, new_code = gate
    token = await new_code()
    ChargingApp.mode = "fail"
    assert (await scan(client, scanner, token))["reason"] == "app_unavailable"
    assert await orders() == 0
    ChargingApp.mode = "fast"
    assert (await scan(client, scanner, token))["result"] == "allow"
    assert (await scan(client, scanner, token))["reason"] == "replayed"
    assert await orders() == 1


async def test_a_retried_record_gets_its_answer_and_the_mini_app_is_not_asked_again(gate):
    client, scanner, new_code = gate
    token = await new_code()
    first = await scan(client, scanner, token, record_id="gate7-0001")
    assert first["result"] == "allow"
    calls = ChargingApp.calls
    for _ in range(3):
        retry = await scan(client, scanner, token, record_id="gate7-0001")
        assert retry == first
    assert ChargingApp.calls == calls
    assert await orders() == 1
    # another record with the same code is a second person: refused
    assert (await scan(client, scanner, token, record_id="gate7-0002"))["reason"] == "replayed"


async def test_concurrent_attempts_of_one_record_take_effect_once(gate):
    client, scanner, new_code = gate
    token = await new_code()
    answers = await asyncio.gather(*(scan(client, scanner, token, record_id="dup-1") for _ in range(8)))
    assert {a["result"] for a in answers} == {"allow"}
    assert len({a["data"]["order_id"] for a in answers}) == 1
    await settled(client)
    assert await orders() == 1


async def test_the_budget_does_not_count_waiting_for_the_database(gate, login, new_phone, auth_header):
    client, scanner, _ = gate
    phone = new_phone()
    codes = []
    for device in ("phone", "watch"):  # one citizen, two devices: two codes
        pair = await login(client, phone, device_id=device)
        codes.append((await client.get("/api/v1/codes/current", headers=auth_header(pair))).json()["token"])
    # the first scan warms what the platform looks up before the mini-app (credential, pairwise id)
    assert (await scan(client, scanner, codes[0]))["result"] == "allow"
    token = codes[1]
    engine = client.runtime.engine
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_database() -> None:
        # SQLite: a write transaction holds the one write lock; PostgreSQL: every pooled connection
        if isinstance(engine, PostgresEngine):
            conns = [await engine.pool.acquire() for _ in range(client.runtime.settings.db_pool_max)]
            held.set()
            await release.wait()
            for c in conns:
                await engine.pool.release(c)
        else:
            async with db.transaction():
                await engine.run_ddl("UPDATE payment_order SET updated_at = updated_at")
                held.set()
                await release.wait()

    holder = asyncio.create_task(hold_the_database())
    await held.wait()
    pending = asyncio.create_task(scan(client, scanner, token))
    await asyncio.sleep(3 * BUDGET)  # the scan queues for the database longer than its budget
    release.set()
    await holder
    answer = await pending
    assert answer["result"] == "allow"
    assert await orders() == 2


async def test_offline_uploads_are_not_cut_off_by_the_online_budget(gate):
    client, scanner, new_code = gate
    token = await new_code()
    now = int(client.runtime.clock.time())
    ChargingApp.mode = "slow"
    r = await client.post(
        "/api/v1/scans/batch",
        json={"records": [{"record_id": "bus9-1", "token": token, "scanned_at": now}]},
        headers=scanner["headers"],
    )
    assert r.json()["results"][0]["result"] == "allow"
    assert await orders() == 1


async def test_an_undecided_upload_is_not_stored_and_is_decided_when_uploaded_again(gate):
    client, scanner, new_code = gate
    token = await new_code()
    now = int(client.runtime.clock.time())
    body = {"records": [{"record_id": "bus9-2", "token": token, "scanned_at": now}]}
    ChargingApp.mode = "fail"
    r = await client.post("/api/v1/scans/batch", json=body, headers=scanner["headers"])
    assert r.json()["results"][0]["reason"] == "app_unavailable"
    assert await orders() == 0
    ChargingApp.mode = "fast"
    r = await client.post("/api/v1/scans/batch", json=body, headers=scanner["headers"])
    assert r.json()["results"][0]["result"] == "allow"
    r = await client.post("/api/v1/scans/batch", json=body, headers=scanner["headers"])
    assert r.json()["results"][0]["result"] == "allow"
    assert await orders() == 1


async def test_a_scan_cancelled_before_its_decision_commits_leaves_nothing(gate):
    # a server stopping, say: the request's task is cancelled while the mini-app decides
    client, scanner, new_code = gate
    token = await new_code()
    router = client.services.miniapps.gate
    machine = await client.services.auth.machines.authenticate(
        scanner["headers"]["Authorization"], ("scanner",)
    )
    ChargingApp.mode, ChargingApp.deciding = "slow", asyncio.Event()
    pending = asyncio.create_task(router.scan(machine, ScanRequest(token=token)))
    await ChargingApp.deciding.wait()
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await settled(client)
    assert await orders() == 0
    ChargingApp.mode = "fast"
    assert (await scan(client, scanner, token))["result"] == "allow"

"""The payment centre drives the channels on its own, shown on the sandbox (which keeps books like a real
channel): a payment whose notice is lost is found by query, and a payment told both ways is one payment;
an expired order's trade is closed at its channel (a channel that says it is paid gets the payment
applied; one that cannot be reached is tried again); a refund the channel answered "processing" is
asked about until it succeeds; each day's statement is downloaded and reconciled once, a difference
reported; statistics come from the ledger; the console's page serves it all.

One app for the module, on one frozen clock that only moves forward: each test makes its own orders and
reads only its own rows, on days of its own where it counts a day's rows.
"""

import asyncio
import gzip
import json
import secrets
import time
from datetime import UTC, date, datetime

import pytest

from backend.clock import FrozenClock
from backend.errors import Conflict
from backend.tables import AuditEvent
from payments.channels.base import channel_busy
from payments.tables import (
    ChannelStatement,
    ChannelTask,
    LedgerEntry,
    OutboxEvent,
    Overpayment,
    PaymentOrder,
    ReconciliationRun,
    Refund,
    SandboxTrade,
)
from tests.integration.payments.conftest import basic

CLOCK = FrozenClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))  # 10:00 in China


@pytest.fixture(scope="module")
async def client(make_module_client):
    async with make_module_client(clock=CLOCK, payment_channels="sandbox") as c:
        yield c


@pytest.fixture
async def people(client, paying_citizen):
    return await paying_citizen(client)


async def _order(client, app_auth, openid, amount=1200):
    body = {"reference": f"ct-{time.time_ns()}-{secrets.token_hex(2)}", "amount": amount, "openid": openid}
    r = await client.post("/api/v1/payments/orders", json=body, headers=app_auth)
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


async def _paying(client, people, amount=1200):
    app_auth, me, openid = people
    oid = await _order(client, app_auth, openid, amount)
    r = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "sandbox"}, headers=me)
    assert r.status_code == 200, r.text
    return oid


async def _paid(client, people, amount=1200):
    oid = await _paying(client, people, amount)
    r = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=people[1])
    assert r.status_code == 200 and r.json()["state"] == "paid", r.text
    return oid


async def _state(oid):
    return (await PaymentOrder.select(PaymentOrder.state).where(PaymentOrder.id == oid).first().run())[
        "state"
    ]


async def _payments_booked(oid):
    """Payments booked on the channel's account (each has its other half on the owner's)."""
    on_channel = (LedgerEntry.kind == "payment") & (LedgerEntry.account == "channel:sandbox")
    return await LedgerEntry.count().where((LedgerEntry.order == oid) & on_channel).run()


async def _events(oid, type_):
    return await OutboxEvent.count().where((OutboxEvent.order == oid) & (OutboxEvent.type == type_)).run()


async def _task(kind, subject):
    return await ChannelTask.select().where(ChannelTask.key == f"{kind}/sandbox/{subject}").first().run()


def recovery(client):
    return client.services.payments.recovery


def sandbox(client):
    return client.services.payments.channels["sandbox"]


# ---- lost notices -------------------------------------------------------------------------------------
async def test_a_lost_notice_is_recovered_by_query_and_the_late_notice_changes_nothing(client, people):
    oid = await _paying(client, people)
    r = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay?lose_notice=true", headers=people[1])
    assert r.status_code == 200 and r.json()["state"] == "paying", r.text  # paid there, not told here

    assert (await _task("query", oid))["done_at"] is None
    await recovery(client).run_once(kinds=("query",))
    assert await _state(oid) == "paying"  # not asked before payment_query_after has passed

    CLOCK.advance(121)
    done = await recovery(client).run_once(kinds=("query",))
    assert done.get("recovered") == 1
    assert await _state(oid) == "paid"
    assert (await _task("query", oid))["outcome"] == "recovered"

    # the sandbox's own notice arrives late: acknowledged, one payment all the same
    headers, body = await sandbox(client).pay_on_page({"order_ref": oid, "amount": 1200})
    r = await client.post("/api/v1/payments/notify/sandbox", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert await _payments_booked(oid) == 1 and await _events(oid, "order.paid") == 1
    assert not await Overpayment.exists().where(Overpayment.order == oid).run()


async def test_a_notice_first_and_a_query_after_are_one_payment(client, people):
    oid = await _paid(client, people)
    outcomes = await client.services.payments.notifications.take(
        "sandbox", await sandbox(client).query_payment({"order_ref": oid})
    )
    assert outcomes == ["applied"]  # recorded: the same transaction, already paid
    CLOCK.advance(121)
    await recovery(client).run_once(kinds=("query",))
    assert (await _task("query", oid))["outcome"] == "paid"
    assert await _payments_booked(oid) == 1 and await _events(oid, "order.paid") == 1


async def test_a_query_and_the_late_notice_at_once_apply_one_payment(client, people):
    """Several deliveries of the notice and several answers of a query, all at once (on PostgreSQL each
    on its own connection): the order's lock and the transaction's match make them one payment."""
    oid = await _paying(client, people)
    await sandbox(client).pay_losing_notice({"order_ref": oid, "amount": 1200})
    notifications = client.services.payments.notifications

    async def by_query():
        return await notifications.take("sandbox", await sandbox(client).query_payment({"order_ref": oid}))

    async def by_notice():
        headers, body = await sandbox(client).pay_on_page({"order_ref": oid, "amount": 1200})
        return await notifications.handle("sandbox", headers, body)

    await asyncio.gather(*(f() for _ in range(3) for f in (by_query, by_notice)))
    assert await _state(oid) == "paid"
    assert await _payments_booked(oid) == 1 and await _events(oid, "order.paid") == 1
    assert not await Overpayment.exists().where(Overpayment.order == oid).run()


async def test_two_workers_never_hold_one_task(client, people):
    oid = await _paying(client, people)
    await sandbox(client).pay_losing_notice({"order_ref": oid, "amount": 1200})
    CLOCK.advance(121)
    task = await _task("query", oid)
    claims = await asyncio.gather(*(recovery(client)._claim(task["id"]) for _ in range(4)))
    assert sum(c is not None for c in claims) == 1
    CLOCK.advance(301)  # the holder died: its lease has run out, and the task is due again
    assert (await recovery(client).run_once(kinds=("query",))).get("recovered") == 1
    assert await _payments_booked(oid) == 1


# ---- closing at the channel ---------------------------------------------------------------------------
async def test_an_expired_order_is_closed_at_its_channel(client, people):
    oid = await _paying(client, people)
    CLOCK.advance(1801)
    assert await client.services.payments.orders.close_expired() >= 1
    assert await _state(oid) == "closed"
    done = await recovery(client).run_once(kinds=("close",))
    assert done.get("closed", 0) >= 1
    assert (await _task("close", oid))["outcome"] == "closed"
    trade = await SandboxTrade.select().where(SandboxTrade.order_ref == oid).first().run()
    assert trade["state"] == "closed"
    with pytest.raises(Conflict):  # nobody pays it now, here or there
        await client.services.payments.orders.sandbox_pay(oid)
    with pytest.raises(Conflict):
        await sandbox(client).pay_losing_notice({"order_ref": oid, "amount": 1200})


async def test_a_trade_paid_when_closing_has_its_payment_applied(client, people):
    oid = await _paying(client, people)
    await sandbox(client).pay_losing_notice({"order_ref": oid, "amount": 1200})  # paid, not told
    CLOCK.advance(1801)
    await client.services.payments.orders.close_expired()
    assert await _state(oid) == "closed"
    done = await recovery(client).run_once(kinds=("close",))
    assert done.get("paid_at_channel") == 1
    # the existing rule for money an order closed before it came: held for refund, booked, told
    over = await Overpayment.select().where(Overpayment.order == oid).run()
    assert [(o["reason"], o["amount"]) for o in over] == [("order_closed", 1200)]
    assert await _events(oid, "order.overpaid") == 1


async def test_a_close_the_channel_cannot_take_is_kept_and_tried_again(client, people, monkeypatch):
    oid = await _paying(client, people)
    CLOCK.advance(1801)
    await client.services.payments.orders.close_expired()

    async def unreachable(order):
        raise channel_busy("sandbox", "timed out")

    monkeypatch.setattr(sandbox(client), "close_payment", unreachable)
    assert (await recovery(client).run_once(kinds=("close",))).get("retry") == 1
    task = await _task("close", oid)
    assert task["done_at"] is None and task["next_at"] > CLOCK.now() and "timed out" in task["last_error"]
    monkeypatch.undo()
    CLOCK.advance(61)
    assert (await recovery(client).run_once(kinds=("close",))).get("closed") == 1


# ---- refunds that take time ---------------------------------------------------------------------------
async def _refund(client, people, oid, amount):
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds",
        json={"reference": f"rf-{secrets.token_hex(3)}", "amount": amount},
        headers=people[0],
    )
    assert r.status_code == 202, r.text
    return r.json()


async def test_a_refund_answered_processing_succeeds_on_query(client, people, monkeypatch):
    oid = await _paid(client, people, 1500)
    monkeypatch.setattr(sandbox(client), "refunds_processing", True)
    refund = await _refund(client, people, oid, 500)
    assert refund["state"] == "pending"
    assert (await recovery(client).run_once(kinds=("refund",))) == {}  # not due yet

    CLOCK.advance(61)
    assert (await recovery(client).run_once(kinds=("refund",))).get("succeeded") == 1
    row = await Refund.select().where(Refund.id == refund["refund_id"]).first().run()
    assert row["state"] == "succeeded"
    assert await _state(oid) == "partially_refunded"
    refunds = (
        await LedgerEntry.count().where((LedgerEntry.order == oid) & (LedgerEntry.kind == "refund")).run()
    )
    assert refunds == 2 and await _events(oid, "order.refunded") == 1
    CLOCK.advance(3600)
    assert "succeeded" not in await recovery(client).run_once(kinds=("refund",))  # done, not asked again


async def test_a_refund_whose_request_got_no_answer_is_asked_for_again(client, people, monkeypatch):
    oid = await _paid(client, people, 900)

    async def busy(refund):
        raise channel_busy("sandbox", "HTTP 503")

    monkeypatch.setattr(sandbox(client), "request_refund", busy)
    refund = await _refund(client, people, oid, 900)
    assert refund["state"] == "pending"  # unknown at the channel: kept, not dropped
    monkeypatch.undo()
    CLOCK.advance(61)
    # the sandbox never heard of it (query: not found), so it is asked for again, same out_refund_no
    assert (await recovery(client).run_once(kinds=("refund",))).get("succeeded") == 1
    assert await _state(oid) == "refunded"


# ---- statements ---------------------------------------------------------------------------------------
async def test_a_days_statement_is_reconciled_once_and_a_difference_reported(client, paying_citizen):
    CLOCK.set(datetime(2026, 12, 10, 2, 0, tzinfo=UTC))  # a day nobody else pays on: 10 December
    people = await paying_citizen(client)
    kept = await _paid(client, people, 700)
    planted = await _paid(client, people, 300)
    # the channel's books lose the second payment: our ledger has a row its statement has not
    await (
        SandboxTrade.update({SandboxTrade.paid_at: datetime(2026, 12, 1, tzinfo=UTC)})
        .where(SandboxTrade.order_ref == planted)
        .run()
    )

    CLOCK.set(datetime(2026, 12, 10, 16, 10, tzinfo=UTC))  # 00:10 on the 11th: not out before 00:30
    await recovery(client).run_once(kinds=("bill",))
    assert (
        not await ChannelStatement.exists().where(ChannelStatement.channel_day == "sandbox/2026-12-10").run()
    )

    CLOCK.set(datetime(2026, 12, 10, 16, 31, tzinfo=UTC))
    await recovery(client).run_once(kinds=("bill",))
    statement = (
        await ChannelStatement.select()
        .where(ChannelStatement.channel_day == "sandbox/2026-12-10")
        .first()
        .run()
    )
    assert statement["rows"] == 1
    raw = gzip.decompress(statement["raw_gzip"]).decode()
    assert kept in raw and planted not in raw
    run = await ReconciliationRun.select().where(ReconciliationRun.day == "2026-12-10").run()
    assert len(run) == 1 and run[0]["source"] == "auto"
    mismatches = run[0]["mismatches"]
    mismatches = json.loads(mismatches) if isinstance(mismatches, str) else mismatches
    assert [(m["kind"], m["order_id"], m["our_amount"]) for m in mismatches] == [
        ("missing_theirs", planted, 300)
    ]

    CLOCK.advance(3600)
    await recovery(client).run_once(kinds=("bill",))  # once per channel and day
    assert await ReconciliationRun.count().where(ReconciliationRun.day == "2026-12-10").run() == 1

    told = await AuditEvent.select().where(AuditEvent.action == "reconciliation_mismatches").run()
    assert any(e["subject"] == "sandbox/2026-12-10" for e in told)

    operator = basic(await client.services.auth.machines.create("operator", name="recon desk"))
    r = await client.get(
        "/api/v1/payments/reconciliation?date=2026-12-10&channel=sandbox&format=csv", headers=operator
    )
    assert r.status_code == 200 and "missing_theirs" in r.text and planted in r.text
    r = await client.get(
        "/api/v1/payments/reconciliation/runs?from=2026-12-10&to=2026-12-10", headers=operator
    )
    assert [(x["channel"], len(x["mismatches"])) for x in r.json()["runs"]] == [("sandbox", 1)]


# ---- statistics and the console ----------------------------------------------------------------------
async def test_statistics_are_read_back_from_the_ledger(client, paying_citizen):
    CLOCK.set(datetime(2026, 12, 20, 2, 0, tzinfo=UTC))  # 20 December, a day of its own
    people = await paying_citizen(client)
    a = await _paid(client, people, 1000)
    b = await _paid(client, people, 2500)
    await _refund(client, people, b, 300)
    operator = basic(await client.services.auth.machines.create("operator", name="stats desk"))
    day = "from=2026-12-20&to=2026-12-20"

    r = await client.get(f"/api/v1/payments/statistics?{day}&group=channel", headers=operator)
    assert r.status_code == 200, r.text
    sandbox_row = r.json()["rows"][0]
    assert sandbox_row == {
        "key": "sandbox",
        "payments": 2,
        "payment_total": 3500,
        "refunds": 1,
        "refund_total": 300,
        "net": 3200,
    }
    # the same figures as the ledger's own rows on the channel's account
    booked = (
        await LedgerEntry.select(LedgerEntry.amount)
        .where(LedgerEntry.order.is_in([a, b]) & (LedgerEntry.account == "channel:sandbox"))
        .run()
    )
    assert sum(x["amount"] for x in booked) == r.json()["totals"]["net"]

    by_owner = (
        await client.get(f"/api/v1/payments/statistics?{day}&group=merchant", headers=operator)
    ).json()
    assert [(x["key"], x["net"]) for x in by_owner["rows"]] == [("miniapp:testgate", 3200)]
    by_day = (await client.get(f"/api/v1/payments/statistics?{day}&group=day", headers=operator)).json()
    assert [x["key"] for x in by_day["rows"]] == ["2026-12-20"]
    csv = await client.get(f"/api/v1/payments/statistics?{day}&format=csv", headers=operator)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[-1] == "total,2,3500,1,300,3200"

    bad = await client.get("/api/v1/payments/statistics?from=2026-12-21&to=2026-12-20", headers=operator)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_statistics"
    assert (
        await client.get(f"/api/v1/payments/statistics?{day}&group=owner", headers=operator)
    ).status_code == 400
    assert (await client.get(f"/api/v1/payments/statistics?{day}")).status_code == 401


async def test_the_console_page_and_its_figures(client, console_login):
    assert (await client.get("/admin/payments", follow_redirects=False)).status_code in (302, 303, 307)
    await console_login(client, f"pay-{secrets.token_hex(3)}", "readonly")
    page = await client.get("/admin/payments")
    assert page.status_code == 200 and "/static/web/payments.js" in page.text
    assert (await client.get("/static/web/payments.js")).status_code == 200
    runs = await client.get("/admin/payments/runs?from=2026-12-01&to=2026-12-31")
    assert any(r["day"] == "2026-12-10" and r["mismatches"] for r in runs.json()["runs"])
    csv = await client.get("/admin/payments/reconciliation.csv?date=2026-12-10&channel=sandbox")
    assert csv.status_code == 200 and csv.text.startswith("kind,txn_id")
    stats = await client.get("/admin/payments/statistics?from=2026-12-20&to=2026-12-20&group=day")
    assert stats.json()["totals"]["net"] == 3200


async def test_the_commands_do_one_pass(client, shengshi_cli, tmp_path):
    r = shengshi_cli("payments", "refunds-retry", "--json")
    assert r.returncode == 0, r.stderr
    r = shengshi_cli("payments", "recover")
    assert r.returncode == 0, r.stderr
    # a channel's own file, read by its parse_bill: the sandbox's statement of the 10th, as published
    native = tmp_path / "sandbox-2026-12-10.csv"
    native.write_bytes((await sandbox(client).download_bill(date(2026, 12, 10))).raw)
    args = ("payments", "reconcile", "--date", "2026-12-10", "--channel", "sandbox", "--native", str(native))
    r = shengshi_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "1 statement row, 2 ledger rows, 1 mismatch" in r.stderr and "missing_theirs" in r.stdout
    sources = (
        await ReconciliationRun.select(ReconciliationRun.source)
        .where(ReconciliationRun.day == "2026-12-10")
        .run()
    )
    assert sorted(x["source"] for x in sources) == ["auto", "native"]
    r = shengshi_cli("payments", "reconcile", "--date", "2026-12-10", "--channel", "sandbox")
    assert r.returncode != 0 and "--native" in r.stderr  # a statement is needed, one way or the other

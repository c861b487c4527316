"""The payment centre's own work against Alipay's local double (tests/doubles/alipay.py), as the
background loop does it (``PaymentRecovery.run_once``): a payment whose notify is lost is found by the
pass's alipay.trade.query (and two passes at once query it once and credit it once); a refund Alipay
answered ``fund_change`` N succeeds on the pass's refund query, one it never received is asked for
again, one whose answer was lost is not made twice; an expired order's trade is closed at Alipay, and
one the citizen paid before the close is booked; a merchant's order QR is paid in the app; the day's
bill, a GBK zip as Alipay publishes it, is downloaded once it is out and reconciled, one planted
difference reported to operators (the runs API, the CSV, the audit event), and a bill that does not add
up is reported and fetched again; a withholding at a till whose notify is lost is found by query.

One app for the module on one frozen clock that only moves forward; the tests run in order, each with
orders of its own. The double stamps payments and refunds with the real time (China time), so our clock
is set on the next morning: today is "yesterday" for the daily run, whose bill is out at 10:00.
"""

import asyncio
import gzip
import json
import secrets
from datetime import datetime, timedelta, timezone
from datetime import time as clock_time

import httpx
import pytest

from backend.clock import FrozenClock
from backend.tables import AuditEvent
from payments.tables import (
    ChannelStatement,
    ChannelTask,
    LedgerEntry,
    OutboxEvent,
    Overpayment,
    PaymentOrder,
    ReconciliationRun,
    Refund,
)
from tests.doubles import alipay as alipay_double
from tests.doubles.alipay import AlipayDouble
from tests.integration.payments.conftest import basic

CHINA = timezone(timedelta(hours=8))
GATEWAY = "https://openapi.alipay.test/gateway.do"
TODAY = datetime.now(CHINA).date()
# 04:00 on the next morning: today's bill is not out before 10:00 (Alipay's bill_ready_at); the tests
# before the bill's move the clock on by about three hours in all
CLOCK = FrozenClock(datetime.combine(TODAY + timedelta(days=1), clock_time(4, 0), CHINA))
BILL_OUT = datetime.combine(TODAY + timedelta(days=1), clock_time(10, 1), CHINA)


@pytest.fixture(scope="module", autouse=True)
def _one_business_day():
    """The double's trades land on TODAY's bill even when the run crosses midnight in China."""
    alipay_double.pin_business_day(TODAY)
    yield
    alipay_double.pin_business_day(None)


@pytest.fixture(scope="module")
def double(channel_keys):
    """Alipay for the players' app: it knows the app's public key; its own key pair is its own."""
    _, player, _ = channel_keys
    return AlipayDouble(player.app_id, player.seller_id, player.app_key.public_key())


@pytest.fixture(scope="module")
async def client(make_module_client, channel_keys, double, tmp_path_factory):
    _, player, _ = channel_keys
    alipay_public = tmp_path_factory.mktemp("alipay-centre") / "alipay_public.pem"
    alipay_public.write_bytes(double.public_pem())
    async with make_module_client(
        clock=CLOCK,
        payment_channels="alipay",
        alipay_app_id=player.app_id,
        alipay_seller_id=player.seller_id,
        alipay_public_key_file=str(alipay_public),
        alipay_app_private_key_file=str(player.app_private_file),
        alipay_gateway=GATEWAY,
    ) as c:
        c.services.payments.channels["alipay"].transport = httpx.ASGITransport(app=double)
        yield c


@pytest.fixture
async def people(client, paying_citizen):
    return await paying_citizen(client)


def recovery(client):
    return client.services.payments.recovery


async def _paying(client, people, amount):
    """A new order the citizen is paying by Alipay's QR (alipay.trade.precreate opened its trade)."""
    app_auth, me, openid = people
    body = {"reference": f"alc-{secrets.token_hex(6)}", "amount": amount, "openid": openid}
    r = await client.post("/api/v1/payments/orders", json=body, headers=app_auth)
    assert r.status_code == 201, r.text
    oid = r.json()["order_id"]
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "alipay", "method": "precreate"}, headers=me
    )
    assert r.status_code == 200 and r.json()["pay"]["qr_code"].startswith("https://qr.alipay.com/"), r.text
    return oid


async def _state(oid):
    return (await PaymentOrder.select(PaymentOrder.state).where(PaymentOrder.id == oid).first().run())[
        "state"
    ]


async def _booked(oid, kind="payment"):
    """Movements of ``kind`` on Alipay's account for the order (each has its other half elsewhere)."""
    where = (
        (LedgerEntry.order == oid) & (LedgerEntry.account == "channel:alipay") & (LedgerEntry.kind == kind)
    )
    return await LedgerEntry.count().where(where).run()


async def _balanced(oid):
    rows = await LedgerEntry.select(LedgerEntry.amount).where(LedgerEntry.order == oid).run()
    assert rows and sum(r["amount"] for r in rows) == 0


async def _events(oid, type_):
    return await OutboxEvent.count().where((OutboxEvent.order == oid) & (OutboxEvent.type == type_)).run()


async def _task(kind, subject):
    return await ChannelTask.select().where(ChannelTask.key == f"{kind}/alipay/{subject}").first().run()


def _asked(double, method, oid, **biz):
    """The requests of ``method`` the double verified for the order (and the given biz fields)."""
    found = []
    for params in double.requests:
        if params.get("method") != method:
            continue
        content = json.loads(params.get("biz_content") or "{}")
        if content.get("out_trade_no") == oid and all(content.get(k) == v for k, v in biz.items()):
            found.append(content)
    return found


# ---- lost notifies ------------------------------------------------------------------------------------
async def test_a_lost_notify_is_found_by_the_passs_query(client, double, people):
    oid = await _paying(client, people, 880)
    double.pay(oid)  # the citizen scanned and paid; Alipay's notify never reaches us
    assert await recovery(client).run_once(kinds=("query",)) == {}  # not asked before 120 s
    assert _asked(double, "alipay.trade.query", oid) == []

    CLOCK.advance(121)
    assert (await recovery(client).run_once(kinds=("query",))).get("recovered") == 1
    assert await _state(oid) == "paid"
    assert (await _task("query", oid))["outcome"] == "recovered"
    assert len(_asked(double, "alipay.trade.query", oid)) == 1
    assert await _booked(oid) == 1 and await _events(oid, "order.paid") == 1
    await _balanced(oid)

    # the notify comes late after all: answered success, one payment all the same
    late = await double.deliver(client, oid)
    assert late.status_code == 200 and late.text == "success"
    assert await _booked(oid) == 1 and await _events(oid, "order.paid") == 1
    assert not await Overpayment.exists().where(Overpayment.order == oid).run()
    CLOCK.advance(3600)
    assert "recovered" not in await recovery(client).run_once(kinds=("query",))  # done, not asked again
    assert len(_asked(double, "alipay.trade.query", oid)) == 1


async def test_two_passes_at_once_query_once_and_credit_once(client, double, people, monkeypatch):
    """Two workers' passes at once (on PostgreSQL each on its own pool connection): both find the task
    due and both try to claim it; the claim lets one of them ask Alipay, and the payment is credited
    once."""
    oid = await _paying(client, people, 660)
    double.pay(oid)
    CLOCK.advance(121)
    task_id = (await _task("query", oid))["id"]
    claims = []
    claim = recovery(client)._claim
    arrived, both = [], asyncio.Event()

    async def watched(tid):
        if tid != task_id:
            return await claim(tid)
        arrived.append(tid)  # each pass found it due: they claim it together
        if len(arrived) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 10)
        got = await claim(tid)
        claims.append(got is not None)
        return got

    monkeypatch.setattr(recovery(client), "_claim", watched)
    passes = await asyncio.gather(*(recovery(client).run_once(kinds=("query",)) for _ in range(2)))
    assert sorted(claims) == [False, True]  # both claimed it at once; one took it
    assert sum(p.get("recovered", 0) for p in passes) == 1
    assert len(_asked(double, "alipay.trade.query", oid)) == 1
    assert await _state(oid) == "paid"
    assert await _booked(oid) == 1 and await _events(oid, "order.paid") == 1
    await _balanced(oid)


# ---- refunds Alipay has not paid out yet --------------------------------------------------------------
async def test_a_refund_answered_fund_change_n_succeeds_on_the_passs_query(client, double, people):
    oid = await _paying(client, people, 1500)
    double.pay(oid)
    assert (await double.deliver(client, oid)).text == "success"
    assert await _state(oid) == "paid"

    double.refund_later = True  # Alipay takes the refund, fund_change N: no money moved yet
    try:
        r = await client.post(
            f"/api/v1/payments/orders/{oid}/refunds",
            json={"reference": "rf-later", "amount": 500},
            headers=people[0],
        )
    finally:
        double.refund_later = False
    assert r.status_code == 202 and r.json()["state"] == "pending", r.text
    refund_id = r.json()["refund_id"]
    assert [x["out_request_no"] for x in _asked(double, "alipay.trade.refund", oid)] == [refund_id]
    assert await recovery(client).run_once(kinds=("refund",)) == {}  # not due yet

    CLOCK.advance(61)
    assert (await recovery(client).run_once(kinds=("refund",))).get("succeeded") == 1
    assert (await Refund.select(Refund.state).where(Refund.id == refund_id).first().run())[
        "state"
    ] == "succeeded"
    asked = _asked(double, "alipay.trade.fastpay.refund.query", oid, out_request_no=refund_id)
    assert len(asked) == 1 and asked[0]["query_options"] == ["gmt_refund_pay"]
    assert len(_asked(double, "alipay.trade.refund", oid)) == 1  # settled by the query, not asked again
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=people[0])).json()
    assert (order["state"], order["refunded"]) == ("partially_refunded", 500)
    assert await _booked(oid, "refund") == 1 and await _events(oid, "order.refunded") == 1
    await _balanced(oid)
    CLOCK.advance(3600)
    assert "succeeded" not in await recovery(client).run_once(kinds=("refund",))  # done, not asked again


# ---- closing at Alipay --------------------------------------------------------------------------------
async def test_an_expired_orders_trade_is_closed_at_alipay(client, double, people):
    oid = await _paying(client, people, 500)
    assert double.trades[oid].status == "WAIT_BUYER_PAY"
    CLOCK.advance(1801)
    assert await client.services.payments.orders.close_expired() >= 1
    assert await _state(oid) == "closed"
    assert (await recovery(client).run_once(kinds=("close",))).get("closed") == 1
    assert (await _task("close", oid))["outcome"] == "closed"
    assert double.trades[oid].status == "TRADE_CLOSED"
    assert len(_asked(double, "alipay.trade.close", oid)) == 1
    # the pass's last query after the window finds it closed there: nothing booked
    await recovery(client).run_once(kinds=("query",))
    assert await _state(oid) == "closed" and await _booked(oid) == 0


async def test_a_trade_paid_when_closing_is_booked(client, double, people):
    oid = await _paying(client, people, 700)
    double.pay(oid)  # paid at Alipay in the last minute; its notify lost
    CLOCK.advance(1801)
    await client.services.payments.orders.close_expired()
    assert await _state(oid) == "closed"
    # Alipay refuses the close (ACQ.TRADE_STATUS_ERROR: channel_trade_paid); the pass asks, and books it
    assert (await recovery(client).run_once(kinds=("close",))).get("paid_at_channel") == 1
    assert double.trades[oid].status == "TRADE_SUCCESS"
    over = await Overpayment.select().where(Overpayment.order == oid).run()
    assert [(o["reason"], o["amount"]) for o in over] == [("order_closed", 700)]
    assert await _booked(oid, "overpayment") == 1 and await _events(oid, "order.overpaid") == 1
    await _balanced(oid)
    # the query task's last ask afterwards is the same payment: not booked twice
    await recovery(client).run_once(kinds=("query",))
    assert await _booked(oid, "overpayment") == 1 and await _booked(oid) == 0
    assert await Overpayment.count().where(Overpayment.order == oid).run() == 1


# ---- a merchant's order QR paid in the app ------------------------------------------------------------
async def test_a_merchants_order_qr_is_paid_in_the_app_through_alipay(client, double, login, new_phone):
    """A partner merchant's order (no citizen yet): the till shows its pay link as a QR, the citizen's
    app opens it and pays with Alipay (the app hands Alipay's SDK the signed order string), Alipay's
    notify comes, and the merchant sees it paid and in the day's settlement."""
    merchant = basic(await client.services.auth.machines.create("merchant", name="沈阳老边饺子馆"))
    body = {"reference": f"qr-{secrets.token_hex(4)}", "amount": 4800, "description": "饺子 两盘"}
    r = await client.post("/api/v1/payments/orders", json=body, headers=merchant)
    assert r.status_code == 201, r.text
    oid = r.json()["order_id"]
    assert r.json()["pay_link"]["uri"] == f"shengshitong://pay?order={oid}"
    qr = await client.get(f"/api/v1/payments/orders/{oid}/qr.png", headers=merchant)
    assert qr.status_code == 200 and qr.content.startswith(b"\x89PNG")
    pair = await login(client, new_phone())
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get(f"/api/v1/payments/orders/{oid}", headers=me)).json()["amount"] == 4800
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/pay", json={"channel": "alipay", "method": "app"}, headers=me
    )
    assert r.status_code == 200, r.text
    trade = double.open_order_string(r.json()["pay"]["order_string"])  # Alipay checks the app's string
    assert (trade.out_trade_no, trade.total) == (oid, 4800)
    double.pay(oid)
    assert (await double.deliver(client, oid)).text == "success"
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=merchant)).json()
    assert (order["state"], order["channel"]) == ("paid", "alipay")
    await _balanced(oid)
    # the merchant's settlement (its day by Alipay's time or by ours: the two days asked together)
    start, end = TODAY.isoformat(), (TODAY + timedelta(days=1)).isoformat()
    r = await client.get(f"/api/v1/merchant/settlements?from={start}&to={end}", headers=merchant)
    assert r.status_code == 200, r.text
    days = r.json()["days"]
    assert sum(d["paid_amount"] for d in days) == 4800 and sum(d["paid_count"] for d in days) == 1
    assert [d["by_channel"] for d in days if d["paid_count"]] == [
        {"alipay": {"paid_count": 1, "paid_amount": 4800, "refunded_amount": 0, "net": 4800}}
    ]


# ---- the day's bill -----------------------------------------------------------------------------------
async def test_the_days_bill_is_reconciled_once_it_is_out_and_a_difference_reported(client, double, people):
    planted = await _paying(client, people, 300)
    double.pay(planted)
    assert (await double.deliver(client, planted)).text == "success"
    assert await _state(planted) == "paid"
    # Alipay's books lose the payment: our ledger has a row its bill has not
    del double.trades[planted]
    double.publish_bill(TODAY)

    assert CLOCK.now() < BILL_OUT - timedelta(minutes=1)  # before 10:00 the pass does not ask
    await recovery(client).run_once(kinds=("bill",))
    bill_asks = [
        p
        for p in double.requests
        if p["method"] == "alipay.data.dataservice.bill.downloadurl.query"
        and json.loads(p["biz_content"])["bill_date"] == TODAY.isoformat()
    ]
    assert bill_asks == []
    channel_day = f"alipay/{TODAY}"
    assert not await ChannelStatement.exists().where(ChannelStatement.channel_day == channel_day).run()

    CLOCK.set(BILL_OUT)
    done = await recovery(client).run_once(kinds=("bill",))
    assert done.get("mismatches") == 1, done  # (the days before: no bill published, asked again later)
    statement = (
        await ChannelStatement.select().where(ChannelStatement.channel_day == channel_day).first().run()
    )
    assert statement["media_type"] == "application/zip"
    assert gzip.decompress(statement["raw_gzip"]) == double.bills[TODAY.isoformat()]  # kept as downloaded
    # every payment of the day Alipay kept (the lost notify's, the two passes', the refunded one, the
    # one paid when closing, the merchant's) and the refund
    assert statement["rows"] == 6
    totals = statement["totals"]
    totals = json.loads(totals) if isinstance(totals, str) else totals
    assert totals["bill"]["count"] == 6 and totals["bill"]["payments"] == 880 + 660 + 1500 + 700 + 4800
    assert totals["bill"]["refunds"] == 500

    [run] = await ReconciliationRun.select().where(ReconciliationRun.day == TODAY.isoformat()).run()
    mismatches = run["mismatches"]
    mismatches = json.loads(mismatches) if isinstance(mismatches, str) else mismatches
    assert [(m["kind"], m["order_id"], m["our_amount"]) for m in mismatches] == [
        ("missing_theirs", planted, 300)
    ]
    assert (run["source"], run["statement_rows"]) == ("auto", 6)
    booked = await LedgerEntry.count().where(LedgerEntry.account == "channel:alipay").run()
    assert run["ledger_rows"] == booked == 7

    CLOCK.advance(3600)
    await recovery(client).run_once(kinds=("bill",))  # once per channel and day
    assert await ReconciliationRun.count().where(ReconciliationRun.day == TODAY.isoformat()).run() == 1

    # reported: the audit event, the runs API, the CSV
    told = await AuditEvent.select().where(AuditEvent.action == "reconciliation_mismatches").run()
    assert [e["subject"] for e in told] == [channel_day]
    operator = basic(await client.services.auth.machines.create("operator", name="alipay desk"))
    day = TODAY.isoformat()
    r = await client.get(f"/api/v1/payments/reconciliation/runs?from={day}&to={day}", headers=operator)
    assert r.status_code == 200, r.text
    assert [(x["channel"], x["source"], len(x["mismatches"])) for x in r.json()["runs"]] == [
        ("alipay", "auto", 1)
    ]
    r = await client.get(
        f"/api/v1/payments/reconciliation?date={day}&channel=alipay&format=csv", headers=operator
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0].startswith("kind,txn_id") and len(lines) == 2
    assert lines[1].startswith("missing_theirs,") and planted in lines[1] and ",300," in lines[1]


async def test_a_bill_that_does_not_add_up_is_reported_and_fetched_again(client, double):
    """Alipay's bill of the day before does not add up to its own totals: it is not reconciled (nothing
    stored), operators are told once (audit ``statement_unusable``), and it is fetched again until Alipay
    publishes one that does."""
    yesterday = TODAY - timedelta(days=1)
    channel_day = f"alipay/{yesterday}"
    double.publish_bill(yesterday, plant=1)  # its payments' total says one fen more than its rows
    CLOCK.advance(1801)
    assert (await recovery(client).run_once(kinds=("bill",))).get("unusable") == 1
    told = await AuditEvent.select().where(AuditEvent.action == "statement_unusable").run()
    assert [e["subject"] for e in told] == [channel_day]
    assert not await ChannelStatement.exists().where(ChannelStatement.channel_day == channel_day).run()
    assert not await ReconciliationRun.exists().where(ReconciliationRun.day == yesterday.isoformat()).run()
    task = await _task("bill", yesterday.isoformat())
    assert (
        task["done_at"] is None and task["outcome"] == "unusable" and "cannot be used" in task["last_error"]
    )
    CLOCK.advance(1801)
    assert (await recovery(client).run_once(kinds=("bill",))).get("unusable") == 1
    assert await AuditEvent.count().where(AuditEvent.action == "statement_unusable").run() == 1  # once

    double.publish_bill(yesterday)  # published again, right
    CLOCK.advance(1801)
    assert (await recovery(client).run_once(kinds=("bill",))).get("reconciled") == 1
    [run] = await ReconciliationRun.select().where(ReconciliationRun.day == yesterday.isoformat()).run()
    assert (run["statement_rows"], run["ledger_rows"]) == (0, 0)


# ---- a withholding at the till whose notify is lost ----------------------------------------------------
async def _waiting_withholding(client, double, login, new_phone, amount):
    """A till's scan charging a new citizen's Alipay agreement, which Alipay answers 10003 (the buyer
    confirms in Alipay): (the till's auth, the reference, the order)."""
    cred = await client.services.auth.machines.create("merchant", name="中街冰点")
    till = (await client.post("/api/v1/merchant/tills", json={"place": "1"}, headers=basic(cred))).json()
    pair = await login(client, new_phone())
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    citizen = (await client.get("/api/v1/me", headers=me)).json()["id"]
    agreement_no = "2021" + "".join(secrets.choice("0123456789") for _ in range(16))
    double.agreements.add(agreement_no)
    await client.services.merchants.paycode.record_agreement(
        citizen, "alipay", agreement_no=agreement_no, signed_by="operator:test"
    )
    r = await client.put("/api/v1/me/paycode", json={"enabled": True, "method": "alipay"}, headers=me)
    assert r.status_code == 200, r.text
    code = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    reference = f"ice-{secrets.token_hex(4)}"
    body = {"code": code, "amount": amount, "reference": reference, "description": "冰点"}
    double.withhold_waiting = True
    try:
        r = await client.post("/api/v1/payments/paycode", json=body, headers=basic(till))
    finally:
        double.withhold_waiting = False
    assert r.status_code == 200 and r.json()["result"] == "pending", r.text
    oid = r.json()["order_id"]
    assert await _state(oid) == "paying"  # at Alipay, asked about if its notify does not come
    return basic(till), reference, oid


async def test_a_withholding_whose_notify_is_lost_is_found_by_the_passs_query(
    client, double, login, new_phone
):
    till, reference, oid = await _waiting_withholding(client, double, login, new_phone, 800)
    CLOCK.advance(31)  # the till polls while the buyer has not confirmed: charged again, still waiting
    double.withhold_waiting = True
    try:
        polled = await client.get(f"/api/v1/payments/paycode/{reference}", headers=till)
    finally:
        double.withhold_waiting = False
    assert polled.json()["result"] == "pending", polled.text
    assert len(_asked(double, "alipay.trade.pay", oid)) == 2
    double.pay(oid)  # the buyer confirmed in Alipay; the notify never reaches us
    CLOCK.advance(90)  # 121 s after the scan: the till's retry did not put the query off
    assert (await recovery(client).run_once(kinds=("query",))).get("recovered") == 1
    assert await _state(oid) == "paid" and await _booked(oid) == 1
    polled = await client.get(f"/api/v1/payments/paycode/{reference}", headers=till)
    assert (polled.json()["result"], polled.json()["order_state"]) == ("paid", "paid"), polled.text
    await _balanced(oid)


async def test_a_withholding_charged_again_after_the_buyer_paid_is_paid_not_failed(
    client, double, login, new_phone
):
    """The till polls before the pass asks: the charge is asked for again, and Alipay's "already paid"
    (ACQ.TRADE_HAS_SUCCESS) is the payment, not a refusal that would close a paid order."""
    till, reference, oid = await _waiting_withholding(client, double, login, new_phone, 900)
    double.pay(oid)
    CLOCK.advance(31)
    polled = await client.get(f"/api/v1/payments/paycode/{reference}", headers=till)
    assert (polled.json()["result"], polled.json()["order_state"]) == ("paid", "paid"), polled.text
    assert len(_asked(double, "alipay.trade.pay", oid)) == 2
    assert await _booked(oid) == 1 and not await Overpayment.exists().where(Overpayment.order == oid).run()
    CLOCK.advance(121)
    await recovery(client).run_once(kinds=("query",))
    assert (await _task("query", oid))["outcome"] == "paid" and await _booked(oid) == 1
    await _balanced(oid)


# ---- refunds whose answer never came ------------------------------------------------------------------
async def _paid(client, double, people, amount):
    oid = await _paying(client, people, amount)
    double.pay(oid)
    assert (await double.deliver(client, oid)).text == "success"
    return oid


async def _refund(client, people, oid, amount):
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds",
        json={"reference": f"rf-{secrets.token_hex(3)}", "amount": amount},
        headers=people[0],
    )
    assert r.status_code == 202 and r.json()["state"] == "pending", r.text  # the outcome unknown: kept
    return r.json()["refund_id"]


async def test_a_refund_alipay_never_received_is_asked_for_again_and_made_once(client, double, people):
    oid = await _paid(client, double, people, 1200)
    double.busy_next = True  # 20000: Alipay did nothing, and we cannot know it
    refund_id = await _refund(client, people, oid, 1200)
    assert double.trades[oid].refunds == {}
    CLOCK.advance(61)
    # the refund query finds no such refund, so the pass asks for it again with the same out_request_no
    assert (await recovery(client).run_once(kinds=("refund",))).get("succeeded") == 1
    assert len(_asked(double, "alipay.trade.fastpay.refund.query", oid, out_request_no=refund_id)) == 1
    assert len(_asked(double, "alipay.trade.refund", oid, out_request_no=refund_id)) == 2
    assert double.trades[oid].refunded == 1200 and double.trades[oid].status == "TRADE_CLOSED"
    assert await _state(oid) == "refunded" and await _booked(oid, "refund") == 1
    await _balanced(oid)


async def test_a_refund_whose_answer_was_lost_is_found_by_query_not_made_twice(client, double, people):
    oid = await _paid(client, double, people, 1000)
    double.missign_next = True  # Alipay refunded, but its answer cannot be trusted: no answer
    refund_id = await _refund(client, people, oid, 400)
    assert double.trades[oid].refunded == 400
    CLOCK.advance(61)
    assert (await recovery(client).run_once(kinds=("refund",))).get("succeeded") == 1
    assert len(_asked(double, "alipay.trade.refund", oid)) == 1  # settled by the query, not asked again
    assert double.trades[oid].refunded == 400
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=people[0])).json()
    assert (order["state"], order["refunded"]) == ("partially_refunded", 400)
    assert [(r["refund_id"], r["state"]) for r in order["refunds"]] == [(refund_id, "succeeded")]
    await _balanced(oid)

"""Refunds: requests a channel refuses, a crash between the steps of a request, Alipay's running refund
totals, and WeChat's refunds that fail (closed) or cannot be paid out (abnormal)."""

import json
import time
import uuid

import pytest

from backend.errors import ServiceUnavailable
from payments.tables import ChannelNotification, LedgerEntry, OutboxEvent, Refund


@pytest.fixture
async def env(pay_client, merchant_of):
    async with pay_client() as client:
        yield client, await merchant_of(client)


async def _order(client, headers, amount=1000, **extra):
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": f"rf-{time.time_ns()}", "amount": amount, **extra},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


def _ask(client, headers, oid, reference, amount):
    return client.post(
        f"/api/v1/payments/orders/{oid}/refunds",
        json={"reference": reference, "amount": amount},
        headers=headers,
    )


async def _state(client, headers, oid):
    return (await client.get(f"/api/v1/payments/orders/{oid}", headers=headers)).json()


async def _balanced(oid):
    rows = await LedgerEntry.select(LedgerEntry.amount).where(LedgerEntry.order == oid).run()
    assert sum(r["amount"] for r in rows) == 0
    return len(rows)


async def _events(oid):
    rows = (
        await OutboxEvent.select(OutboxEvent.type, OutboxEvent.payload)
        .where(OutboxEvent.order == oid)
        .order_by(OutboxEvent.created_at)
        .run()
    )
    return [
        (r["type"], r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"]))
        for r in rows
    ]


async def test_a_refund_the_channel_cannot_take_leaves_nothing_behind(env, players):
    client, merchant = env
    wechat, _ = players
    oid = await _order(client, merchant)
    assert (
        await client.post(
            "/api/v1/payments/notify/wechatpay", content=(n := wechat.paid(oid, 1000))[1], headers=n[0]
        )
    ).status_code == 204
    for reference in ("first", "second", "first"):
        r = await _ask(client, merchant, oid, reference, 1000)
        assert r.status_code == 503 and r.json()["code"] == "channel_refund_unavailable", r.text
    assert await Refund.count().where(Refund.order == oid).run() == 0
    # refunded at WeChat's console instead: its notice is applied in full, nothing holds room
    headers, body = wechat.refunded(oid, "console-1", 1000, 1000)
    assert (
        await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
    ).status_code == 204
    order = await _state(client, merchant, oid)
    assert order["state"] == "refunded" and order["refunded"] == 1000
    assert [(r["amount"], r["state"]) for r in order["refunds"]] == [(1000, "succeeded")]


@pytest.fixture
async def sandbox_paid(pay_client, paying_citizen):
    async with pay_client() as client:
        app_auth, me, openid = await paying_citizen(client)
        oid = await _order(client, app_auth, openid=openid)
        r = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
        assert r.json()["state"] == "paid"
        yield client, app_auth, oid


async def test_a_refund_request_the_channel_refuses_is_not_kept(sandbox_paid, monkeypatch):
    client, app_auth, oid = sandbox_paid
    sandbox = client.services.payments.channels["sandbox"]

    async def refuse(refund):
        raise ServiceUnavailable("the sandbox's refund desk is closed", code="channel_refund_unavailable")

    monkeypatch.setattr(sandbox, "request_refund", refuse)
    r = await _ask(client, app_auth, oid, "rf-1", 600)
    assert r.status_code == 503 and r.json()["code"] == "channel_refund_unavailable"
    assert await Refund.count().where(Refund.order == oid).run() == 0
    monkeypatch.undo()
    # the same reference again, once the channel takes refunds: accepted, and the room was all there
    r = await _ask(client, app_auth, oid, "rf-1", 600)
    assert r.status_code == 202 and r.json()["state"] == "succeeded"
    r = await _ask(client, app_auth, oid, "rf-2", 400)
    assert r.status_code == 202
    order = await _state(client, app_auth, oid)
    assert order["state"] == "refunded" and order["refunded"] == 1000
    assert await _balanced(oid) == 6


async def test_a_crash_between_the_steps_of_a_refund_request_is_completed_by_the_retry(sandbox_paid):
    client, app_auth, oid = sandbox_paid
    # step 1 committed (the refund pending, holding its room), then the process died before asking
    await Refund.insert(
        Refund(id=uuid.uuid4(), order=uuid.UUID(oid), order_reference=f"{oid}/rf-crash", amount=300)
    ).run()
    r = await _ask(client, app_auth, oid, "rf-other", 800)
    assert r.status_code == 409 and r.json()["refundable"] == 700
    r = await _ask(client, app_auth, oid, "rf-crash", 300)  # the caller retries
    assert r.status_code == 200 and r.json()["state"] == "succeeded"
    order = await _state(client, app_auth, oid)
    assert order["refunded"] == 300 and [x["state"] for x in order["refunds"]] == ["succeeded"]
    r = await _ask(client, app_auth, oid, "rf-crash", 300)  # and again: nothing more
    assert r.status_code == 200 and (await _state(client, app_auth, oid))["refunded"] == 300
    assert await _balanced(oid) == 4


async def test_alipay_refund_fee_is_the_running_total(env, players):
    client, merchant = env
    _, alipay = players
    oid = await _order(client, merchant)
    trade_no = "2026112522001" + uuid.uuid4().hex[:8]

    async def post(headers, body):
        r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
        assert r.content == b"success", r.content
        return (await _state(client, merchant, oid))["refunded"]

    assert await post(*alipay.notify(oid, "10.00", trade_no=trade_no)) == 0

    def refund(total, out_biz_no, status="TRADE_SUCCESS", notify_id=None):
        return alipay.notify(
            oid,
            "10.00",
            trade_no=trade_no,
            status=status,
            notify_id=notify_id,
            extra={"refund_fee": total, "out_biz_no": out_biz_no, "gmt_refund": "2026-11-25 17:00:00"},
        )

    assert await post(*refund("3.00", "RF-A", notify_id="ac05-rf-a")) == 300
    assert await post(*refund("8.00", "RF-B", notify_id="ac05-rf-b")) == 800  # 5.00 more, not 8.00
    assert await post(*refund("8.00", "RF-B", notify_id="ac05-rf-b")) == 800  # Alipay's resend
    assert await post(*refund("3.00", "RF-A")) == 800  # an older total arriving late: nothing
    # the refund that completes it comes as TRADE_CLOSED with the full total: applied, not refused
    # (out_biz_no may be 64 characters long: the refund recorded for it still fits)
    assert await post(*refund("10.00", "RF-C-" + "x" * 59, status="TRADE_CLOSED")) == 1000
    order = await _state(client, merchant, oid)
    assert order["state"] == "refunded"
    assert sorted(r["amount"] for r in order["refunds"]) == [200, 300, 500]
    assert await _balanced(oid) == 8
    assert [t for t, _ in await _events(oid)] == ["order.paid"] + ["order.refunded"] * 3


async def test_wechat_refunds_that_close_or_go_abnormal(env, players):
    client, merchant = env
    wechat, _ = players
    oid = await _order(client, merchant)

    async def post(headers, body):
        r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
        assert r.status_code == 204, r.text

    await post(*wechat.paid(oid, 1000))
    # a refund asked for where the refund API is reachable (written as step 1 of a request does)
    ours = uuid.uuid4()
    await Refund.insert(Refund(id=ours, order=uuid.UUID(oid), order_reference=f"{oid}/r1", amount=600)).run()
    assert (await _ask(client, merchant, oid, "r2", 600)).json()["code"] == "refund_exceeds_payment"
    await post(*wechat.refunded(oid, str(ours), 600, 1000, status="CLOSED"))
    # the closed refund holds no room any more (the request now only meets the unreachable refund API)
    assert (await _ask(client, merchant, oid, "r2", 600)).json()["code"] == "channel_refund_unavailable"
    # one made at WeChat's console that could not be paid out (the citizen's card was closed)
    abnormal = "50000" + uuid.uuid4().hex[:12]
    headers, body = wechat.refunded(oid, "console-9", 400, 1000, status="ABNORMAL", refund=abnormal)
    await post(headers, body)
    await post(headers, body)  # WeChat's resend: nothing more
    order = await _state(client, merchant, oid)
    assert order["state"] == "paid" and order["refunded"] == 0
    assert sorted((r["amount"], r["state"], r["failure"]) for r in order["refunds"]) == [
        (400, "abnormal", "ABNORMAL"),
        (600, "failed", "CLOSED"),
    ]
    failed = [
        (p["refund_amount"], p["refund_state"]) for t, p in await _events(oid) if t == "order.refund_failed"
    ]
    assert failed == [(600, "failed"), (400, "abnormal")]
    # the operator pays the abnormal refund out another way; WeChat then reports it a success
    await post(*wechat.refunded(oid, "console-9", 400, 1000, refund=abnormal))
    order = await _state(client, merchant, oid)
    assert order["refunded"] == 400 and order["state"] == "partially_refunded"
    assert sorted((r["amount"], r["state"]) for r in order["refunds"]) == [
        (400, "succeeded"),
        (600, "failed"),
    ]
    assert await _balanced(oid) == 4
    statuses = await ChannelNotification.select(ChannelNotification.status).run()
    assert {s["status"] for s in statuses} == {"applied"}

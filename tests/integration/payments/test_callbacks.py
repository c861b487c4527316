"""Channel callbacks byte-exactly, exactly once, whatever arrives."""

import asyncio
import json
import secrets
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.tables import ChannelNotification, LedgerEntry, OutboxEvent, PaymentOrder


@pytest.fixture
async def env(pay_client, merchant_of):
    async with pay_client() as client:
        yield client, await merchant_of(client)


async def _order(client, headers, amount=1234, reference=None):
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": reference or f"ref-{time.time_ns()}", "amount": amount, "description": "停车费"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _post_wechat(client, headers, body):
    return await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)


async def _ledger_sum(order_id):
    rows = await LedgerEntry.select(LedgerEntry.amount).where(LedgerEntry.order == order_id).run()
    return sum(r["amount"] for r in rows), len(rows)


async def test_the_same_wechat_notification_twenty_times_at_once(env, players):
    client, merchant = env
    wechat, _ = players
    order = await _order(client, merchant)
    headers, body = wechat.paid(order["order_id"], 1234)
    replies = await asyncio.gather(*(_post_wechat(client, headers, body) for _ in range(20)))
    assert [r.status_code for r in replies] == [204] * 20
    row = await PaymentOrder.select().where(PaymentOrder.id == order["order_id"]).first().run()
    assert row["state"] == "paid" and row["channel"] == "wechatpay"
    total, entries = await _ledger_sum(order["order_id"])
    assert (total, entries) == (0, 2)
    credits = (
        await LedgerEntry.select()
        .where((LedgerEntry.order == order["order_id"]) & (LedgerEntry.amount > 0))
        .run()
    )
    assert len(credits) == 1 and credits[0]["amount"] == 1234
    assert await OutboxEvent.count().where(OutboxEvent.order == order["order_id"]).run() == 1
    assert await ChannelNotification.count().run() == 1
    # a resend a day later: success again, no second effect
    assert (
        await _post_wechat(client, *wechat.paid(order["order_id"], 1234, event_id=json.loads(body)["id"]))
    ).status_code == 204
    assert await OutboxEvent.count().where(OutboxEvent.order == order["order_id"]).run() == 1


async def test_alipay_resends_change_state_once(env, players):
    client, merchant = env
    _, alipay = players
    order = await _order(client, merchant, amount=8888)
    headers, body = alipay.notify(order["order_id"], "88.88", notify_id="ac05notify0001")
    for _ in range(3):
        r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
        assert (
            r.status_code == 200
            and r.content == b"success"
            and r.headers["content-type"].startswith("text/plain")
        )
    again_headers, again_body = alipay.notify(order["order_id"], "88.88", notify_id="ac05notify0001")
    assert (
        await client.post("/api/v1/payments/notify/alipay", content=again_body, headers=again_headers)
    ).content == b"success"
    assert (
        await PaymentOrder.select(PaymentOrder.state)
        .where(PaymentOrder.id == order["order_id"])
        .first()
        .run()
    )["state"] == "paid"
    assert await _ledger_sum(order["order_id"]) == (0, 2)


async def test_forged_stale_and_odd_callbacks_change_nothing(env, players):
    client, merchant = env
    wechat, alipay = players
    order = await _order(client, merchant)
    oid = order["order_id"]
    cases = {}
    h, b = wechat.paid(oid, 1234)
    cases["wrong signature"] = (
        {**h, "Wechatpay-Signature": wechat.paid(oid, 1234)[0]["Wechatpay-Signature"]},
        b,
    )
    cases["re-serialised body"] = (h, json.dumps(json.loads(b), indent=2).encode())
    cases["six minutes old"] = wechat.paid(oid, 1234, ts=int(time.time()) - 360)
    cases["unknown serial"] = wechat.paid(oid, 1234, serial="0000000000000000000000000000000000000000")
    cases["signtest probe"] = ({**h, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/abcdef"}, b)
    cases["tampered ciphertext"] = wechat.paid(oid, 1234, tamper="ciphertext")
    cases["missing headers"] = ({"Content-Type": "application/json"}, b)
    cases["not json"] = (h, b"<xml>hello</xml>")
    for name, (headers, body) in cases.items():
        r = await _post_wechat(client, headers, body)
        assert 400 <= r.status_code < 500, name
        assert r.json()["code"] == "FAIL", name
    # recorded and refused: a genuine notification whose amount or order does not match
    r = await _post_wechat(client, *wechat.paid(oid, 999))
    assert r.status_code == 400 and r.json()["code"] == "FAIL"
    r = await _post_wechat(client, *wechat.paid("1f0c0000-0000-4000-8000-000000000000", 1234))
    assert r.status_code == 400
    refused = (
        await ChannelNotification.select(ChannelNotification.reason)
        .where(ChannelNotification.status == "rejected")
        .run()
    )
    assert sorted(r["reason"] for r in refused) == ["amount_mismatch", "unknown_order"]
    # Alipay: a different key, a tampered amount
    ah, ab = alipay.notify(
        oid, "12.34", sign_with=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    assert (await client.post("/api/v1/payments/notify/alipay", content=ab, headers=ah)).content == b"fail"
    ah, ab = alipay.notify(oid, "12.34")
    assert (
        await client.post("/api/v1/payments/notify/alipay", content=ab.replace(b"12.34", b"1.34"), headers=ah)
    ).content == b"fail"
    row = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
    assert (
        row["state"] == "created"
        and await LedgerEntry.count().run() == 0
        and await OutboxEvent.count().run() == 0
    )


async def test_a_refund_notice_before_its_payment(env, players, make_client):
    client, merchant = env
    wechat, _ = players
    order = await _order(client, merchant, amount=5000)
    oid = order["order_id"]
    # the refund was created at our side once paid... here its notice outruns the payment's
    import uuid

    from payments.tables import Refund

    refund_id = uuid.uuid4()
    txn = "4200000" + secrets.token_hex(6)
    r = await _post_wechat(client, *wechat.refunded(oid, str(refund_id), 2000, 5000, transaction_id=txn))
    assert r.status_code == 204  # kept, not lost: applied when the payment arrives
    assert (await PaymentOrder.select(PaymentOrder.state).where(PaymentOrder.id == oid).first().run())[
        "state"
    ] == "created"
    assert (await _post_wechat(client, *wechat.paid(oid, 5000, transaction_id=txn))).status_code == 204
    row = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
    assert row["state"] == "partially_refunded" and row["refunded"] == 2000
    assert await _ledger_sum(oid) == (0, 4)
    assert await Refund.count().where(Refund.order == oid).run() == 1
    events = (
        await OutboxEvent.select(OutboxEvent.type)
        .where(OutboxEvent.order == oid)
        .order_by(OutboxEvent.created_at)
        .run()
    )
    assert [e["type"] for e in events] == ["order.paid", "order.refunded"]


async def test_refunds_never_exceed_the_payment(env, players):
    client, merchant = env
    wechat, _ = players
    order = await _order(client, merchant, amount=3000)
    oid = order["order_id"]
    await _post_wechat(client, *wechat.paid(oid, 3000))
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds", json={"reference": "r1", "amount": 3001}, headers=merchant
    )
    assert r.status_code == 409 and r.json()["code"] == "refund_exceeds_payment"
    # a channel notice for more than was paid is recorded and refused
    r = await _post_wechat(client, *wechat.refunded(oid, "channel-side", 3500, 3000))
    assert r.status_code == 400
    row = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
    assert row["state"] == "paid" and row["refunded"] == 0

"""A channel closing its trade: it ends that channel's payment attempt, never the order behind it.

Alipay sends TRADE_CLOSED when an unpaid trade times out (the citizen opened the order string and did not
pay); WeChat Pay may tell a transaction's state in a notice. Neither is a word about the order: the order
goes back to payable (``created``, no channel) unless it is past its own payment window; a deferred
order (a debt) is never closed by a channel; a close from a channel the order is not being paid in
changes nothing. Each notice is recorded (``channel_notification``) and acknowledged.
"""

import asyncio
import json
import secrets
import time

import pytest

from payments.tables import ChannelNotification, LedgerEntry, OutboxEvent, Overpayment, PaymentOrder


@pytest.fixture
async def world(pay_client, paying_citizen, frozen_clock):
    async with pay_client(clock=frozen_clock, order_ttl=300) as client:
        app_auth, me, openid = await paying_citizen(client)
        yield client, app_auth, me, openid, frozen_clock


async def _order(client, app_auth, amount=200, **extra):
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": f"cl-{time.time_ns()}-{secrets.token_hex(2)}", "amount": amount, **extra},
        headers=app_auth,
    )
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


async def _start_alipay(client, me, oid):
    r = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "alipay"}, headers=me)
    assert r.status_code == 200 and r.json()["pay"]["order_string"], r.text
    row = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
    assert (row["state"], row["channel"]) == ("paying", "alipay")


async def _alipay(client, headers, body):
    r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
    assert (r.status_code, r.content) == (200, b"success"), r.content
    return r


async def _wechat(client, headers, body):
    r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
    assert r.status_code == 204, r.text
    return r


async def _order_row(oid):
    return await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()


async def _events(oid):
    rows = (
        await OutboxEvent.select(OutboxEvent.type)
        .where(OutboxEvent.order == oid)
        .order_by(OutboxEvent.created_at)
        .run()
    )
    return [r["type"] for r in rows]


async def _records(oid):
    rows = (
        await ChannelNotification.select(
            ChannelNotification.channel,
            ChannelNotification.kind,
            ChannelNotification.status,
            ChannelNotification.reason,
        )
        .where(ChannelNotification.order_ref == str(oid))
        .order_by(ChannelNotification.received_at)
        .run()
    )
    return [(r["channel"], r["kind"], r["status"], r["reason"]) for r in rows]


async def _unpaid_total(client, me):
    r = await client.get("/api/v1/me/orders", params={"unpaid": "true"}, headers=me)
    assert r.status_code == 200, r.text
    return r.json()["unpaid_total"]


async def test_a_channel_close_never_wipes_a_deferred_fare(world, players):
    """The reported case: a ride's fare (a debt) the citizen started paying with Alipay; Alipay closes
    the unpaid trade. The fare is still owed, and can still be paid."""
    client, app_auth, me, openid, _ = world
    _, alipay = players
    oid = await _order(client, app_auth, 200, openid=openid, deferred=True)
    assert await _unpaid_total(client, me) == 200
    await _start_alipay(client, me, oid)
    await _alipay(client, *alipay.notify(oid, "2.00", status="TRADE_CLOSED"))
    row = await _order_row(oid)
    assert (row["state"], row["channel"], row["closed_at"]) == ("created", "", None)
    assert await _unpaid_total(client, me) == 200
    assert await _events(oid) == []
    assert await _records(oid) == [("alipay", "closed", "applied", "payment_attempt_ended")]
    # a close from a channel the fare is not being paid in changes nothing either
    await _alipay(client, *alipay.notify(oid, "2.00", status="TRADE_CLOSED"))
    assert (await _order_row(oid))["state"] == "created" and await _unpaid_total(client, me) == 200
    # still the citizen's to pay, and paid it is
    await _start_alipay(client, me, oid)
    await _alipay(client, *alipay.notify(oid, "2.00"))
    assert (await _order_row(oid))["state"] == "paid" and await _unpaid_total(client, me) == 0
    assert await _events(oid) == ["order.paid"]


async def test_a_close_from_a_channel_the_order_is_not_paid_in_changes_nothing(world, players):
    """An order never opened in Alipay gets Alipay's TRADE_CLOSED (a stale or stray trade), then the
    citizen pays it with WeChat: the merchant is paid, nothing is held as an overpayment."""
    client, app_auth, _me, openid, clock = world
    wechat, alipay = players
    oid = await _order(client, app_auth, 1000, openid=openid)
    await _alipay(client, *alipay.notify(oid, "10.00", status="TRADE_CLOSED"))
    row = await _order_row(oid)
    assert (row["state"], row["closed_at"]) == ("created", None)
    assert await _records(oid) == [("alipay", "closed", "applied", "not_paying_there")]
    await _wechat(client, *wechat.paid(oid, 1000, ts=int(clock.time())))
    row = await _order_row(oid)
    assert (row["state"], row["channel"]) == ("paid", "wechatpay")
    assert await Overpayment.count().where(Overpayment.order == oid).run() == 0
    assert await _events(oid) == ["order.paid"]


async def test_the_paying_channels_close_ends_its_attempt_and_the_order_is_payable_again(world, players):
    client, app_auth, me, openid, clock = world
    wechat, alipay = players
    oid = await _order(client, app_auth, 500, openid=openid)
    await _start_alipay(client, me, oid)
    await _alipay(client, *alipay.notify(oid, "5.00", status="TRADE_CLOSED"))
    row = await _order_row(oid)
    assert (row["state"], row["channel"], row["closed_at"]) == ("created", "", None)
    mine = (await client.get("/api/v1/me/orders", params={"unpaid": "true"}, headers=me)).json()
    assert oid in [o["order_id"] for o in mine["items"]]
    # the citizen pays again, in the sandbox this time
    r = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
    assert r.status_code == 200 and r.json()["state"] == "paid", r.text
    assert await _events(oid) == ["order.paid"]
    # a close arriving after the payment changes nothing
    await _wechat(
        client,
        *wechat.notification(
            "TRANSACTION.CLOSED",
            {
                "mchid": "1900000001",
                "appid": "wxd678efh567hg6787",
                "out_trade_no": oid,
                "trade_state": "CLOSED",
                "amount": {"total": 500, "currency": "CNY"},
            },
            ts=int(clock.time()),
        ),
    )
    assert (await _order_row(oid))["state"] == "paid"
    assert sorted(r[3] for r in await _records(oid)) == ["", "nothing_to_close", "payment_attempt_ended"]


async def test_a_close_past_the_orders_own_window_closes_it(world, players):
    """Past its payment window the order would be closed by the minute's close-expired anyway: the
    channel's close does it now, as close-expired does."""
    client, app_auth, me, openid, clock = world
    _, alipay = players
    oid = await _order(client, app_auth, 500, openid=openid)
    await _start_alipay(client, me, oid)
    clock.advance(301)
    await _alipay(client, *alipay.notify(oid, "5.00", status="TRADE_CLOSED"))
    row = await _order_row(oid)
    assert row["state"] == "closed" and row["closed_at"] is not None
    assert await _events(oid) == ["order.closed"]
    assert await _records(oid) == [("alipay", "closed", "applied", "")]


async def test_a_wechat_success_event_whose_trade_is_not_paid_is_recorded_and_acknowledged(world, players):
    """WeChat's events are read by their event_type first: a TRANSACTION.SUCCESS whose trade_state is
    not SUCCESS is neither a payment nor a close."""
    client, app_auth, me, openid, clock = world
    wechat, _ = players
    oid = await _order(client, app_auth, 300, openid=openid, deferred=True)
    for state in ("CLOSED", "NOTPAY", "REFUND"):
        await _wechat(
            client,
            *wechat.paid(
                oid, 300, ts=int(clock.time()), resource={"trade_state": state, "transaction_id": ""}
            ),
        )
    row = await _order_row(oid)
    assert (row["state"], row["closed_at"]) == ("created", None) and await _unpaid_total(client, me) == 300
    assert await _events(oid) == [] and await LedgerEntry.count().where(LedgerEntry.order == oid).run() == 0
    assert await _records(oid) == [("wechatpay", "status", "applied", "not_a_payment")] * 3
    stored = await ChannelNotification.select(ChannelNotification.summary).run()
    summaries = [s["summary"] if isinstance(s["summary"], dict) else json.loads(s["summary"]) for s in stored]
    assert sorted(s["trade_state"] for s in summaries) == ["CLOSED", "NOTPAY", "REFUND"]


async def test_the_paying_channels_close_racing_another_channels_payment(world, players):
    """Alipay closes its timed-out trade while the citizen's WeChat payment arrives, at once (on
    PostgreSQL truly so: each notice takes its own connection and the order's row lock orders them).
    Whichever goes first, the order ends paid by WeChat, once, with nothing held as an overpayment."""
    client, app_auth, me, openid, clock = world
    wechat, alipay = players
    oids = [await _order(client, app_auth, 700, openid=openid) for _ in range(6)]
    for oid in oids:
        await _start_alipay(client, me, oid)
    notifications = client.services.payments.notifications
    calls = []
    for n, oid in enumerate(oids):
        close = notifications.handle("alipay", *alipay.notify(oid, "7.00", status="TRADE_CLOSED"))
        pay = notifications.handle("wechatpay", *wechat.paid(oid, 700, ts=int(clock.time())))
        calls += [close, pay] if n % 2 else [pay, close]
    replies = await asyncio.gather(*calls)
    assert all(reply.status in (200, 204) for reply, _ in replies), replies
    for oid in oids:
        row = await _order_row(oid)
        assert (row["state"], row["channel"], row["closed_at"]) == ("paid", "wechatpay", None)
        assert await Overpayment.count().where(Overpayment.order == oid).run() == 0
        assert await _events(oid) == ["order.paid"]
        ledger = await LedgerEntry.select(LedgerEntry.amount).where(LedgerEntry.order == oid).run()
        assert sorted(e["amount"] for e in ledger) == [-700, 700]
        assert {r[2] for r in await _records(oid)} == {"applied"}

"""Money state changes under true concurrency.

These tests exist for PostgreSQL: each request of an ``asyncio.gather`` takes its own pool connection, so
the notices and requests below really run at the same time (SQLite serialises writers and proves
nothing, but the tests pass there too). After each race the database is read back: the order's state
and refunded total, its ledger rows (they sum to zero), its outbox events, the notification records.
"""

import asyncio
import os
import secrets
import time

import httpx
import pytest

from payments.tables import ChannelNotification, LedgerEntry, OutboxEvent, Overpayment, PaymentOrder, Refund


@pytest.fixture
async def env(pay_client, merchant_of):
    async with pay_client() as client:
        yield client, await merchant_of(client)


async def _order(client, headers, amount=1000, **extra):
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": f"race-{time.time_ns()}-{secrets.token_hex(2)}", "amount": amount, **extra},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


def _wechat(client, headers, body):
    return client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)


def _alipay(client, headers, body):
    return client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)


async def _books(oid):
    """What the database holds for one order after a race."""
    order = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
    ledger = await LedgerEntry.select().where(LedgerEntry.order == oid).run()
    events = (
        await OutboxEvent.select(OutboxEvent.type)
        .where(OutboxEvent.order == oid)
        .order_by(OutboxEvent.created_at)
        .run()
    )
    notices = (
        await ChannelNotification.select(ChannelNotification.status, ChannelNotification.reason)
        .where(ChannelNotification.order_ref == str(oid))
        .run()
    )
    return order, ledger, [e["type"] for e in events], notices


def _channel_credits(ledger):
    return sorted(e["amount"] for e in ledger if e["account"].startswith("channel:") and e["amount"] > 0)


async def test_distinct_payment_notices_of_one_transaction_credit_once(env, players):
    """WeChat delivers one transaction under several notification ids at once: one credit."""
    client, merchant = env
    wechat, _ = players
    oid = await _order(client, merchant)
    txn = "4200000" + secrets.token_hex(6)
    notices = [wechat.paid(oid, 1000, transaction_id=txn) for _ in range(8)]
    replies = await asyncio.gather(*(_wechat(client, h, b) for h, b in notices))
    assert [r.status_code for r in replies] == [204] * 8
    order, ledger, events, records = await _books(oid)
    assert order["state"] == "paid" and order["channel_txn"] == txn
    assert _channel_credits(ledger) == [1000] and sum(e["amount"] for e in ledger) == 0
    assert events == ["order.paid"]
    assert len(records) == 8 and {r["status"] for r in records} == {"applied"}
    assert await Overpayment.count().where(Overpayment.order == oid).run() == 0


async def test_two_channels_paying_one_order_at_once(env, players):
    """Five WeChat and five Alipay deliveries of one payment each, all at once: the order is paid once,
    and the other channel's money is booked as an overpayment to refund (not dropped)."""
    client, merchant = env
    wechat, alipay = players
    oid = await _order(client, merchant)
    wx_txn, ali_txn = "4200000" + secrets.token_hex(6), "2026112522001" + secrets.token_hex(4)
    calls = [_wechat(client, *wechat.paid(oid, 1000, transaction_id=wx_txn)) for _ in range(5)]
    calls += [_alipay(client, *alipay.notify(oid, "10.00", trade_no=ali_txn)) for _ in range(5)]
    replies = await asyncio.gather(*calls)
    assert [r.status_code for r in replies[:5]] == [204] * 5
    assert [(r.status_code, r.content) for r in replies[5:]] == [(200, b"success")] * 5
    order, ledger, events, records = await _books(oid)
    assert order["state"] == "paid" and order["channel"] in ("wechatpay", "alipay")
    other = "alipay" if order["channel"] == "wechatpay" else "wechatpay"
    assert _channel_credits(ledger) == [1000, 1000] and sum(e["amount"] for e in ledger) == 0
    assert sorted(events) == ["order.overpaid", "order.paid"]
    extra = await Overpayment.select().where(Overpayment.order == oid).run()
    assert [(o["channel"], o["amount"], o["state"]) for o in extra] == [(other, 1000, "to_refund")]
    assert extra[0]["channel_txn"] == (ali_txn if other == "alipay" else wx_txn)
    assert len(records) == 10 and {r["status"] for r in records} == {"applied"}


async def test_distinct_refund_notices_for_one_order(env, players):
    """Five different refunds of 600 on a paid 1000 order arrive at once: one fits, four are refused."""
    client, merchant = env
    wechat, _ = players
    oid = await _order(client, merchant)
    assert (await _wechat(client, *wechat.paid(oid, 1000))).status_code == 204
    notices = [wechat.refunded(oid, f"console-{n}", 600, 1000) for n in range(5)]
    replies = await asyncio.gather(*(_wechat(client, h, b) for h, b in notices))
    assert sorted(r.status_code for r in replies) == [204, 400, 400, 400, 400]
    order, ledger, events, records = await _books(oid)
    assert order["state"] == "partially_refunded" and order["refunded"] == 600
    assert len(ledger) == 4 and sum(e["amount"] for e in ledger) == 0
    assert events == ["order.paid", "order.refunded"]
    assert sorted(r["reason"] for r in records if r["status"] == "rejected") == ["refund_exceeds_payment"] * 4
    assert await Refund.count().where(Refund.order == oid).run() == 1


@pytest.fixture
async def sandbox_world(pay_client, paying_citizen, frozen_clock):
    async with pay_client(clock=frozen_clock, order_ttl=300) as client:
        app_auth, me, openid = await paying_citizen(client)
        yield client, app_auth, me, openid, frozen_clock


async def _paid_on_sandbox(client, app_auth, me, openid, amount=1000):
    oid = await _order(client, app_auth, amount, openid=openid)
    r = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
    assert r.status_code == 200 and r.json()["state"] == "paid", r.text
    return oid


async def test_refund_requests_racing_refund_requests(sandbox_world):
    client, app_auth, me, openid, _ = sandbox_world
    oid = await _paid_on_sandbox(client, app_auth, me, openid)
    orders = client.services.payments.orders

    def ask(reference, amount=600):
        return client.post(
            f"/api/v1/payments/orders/{oid}/refunds",
            json={"reference": reference, "amount": amount},
            headers=app_auth,
        )

    # straight at the service (the HTTP layer's authentication spaces requests out)...
    results = await asyncio.gather(
        *(
            orders.refund(oid, owner="miniapp:testgate", reference=f"svc-{n}", amount=600, reason="")
            for n in range(5)
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 4 and {getattr(e, "code", repr(e)) for e in refused} == {"refund_exceeds_payment"}
    # ... and over HTTP
    replies = await asyncio.gather(*(ask(f"rf-{n}", 300) for n in range(3)))
    assert sorted(r.status_code for r in replies) == [202, 409, 409]
    assert {r.json()["code"] for r in replies if r.status_code == 409} == {"refund_exceeds_payment"}
    # the same reference five times at once: one refund, the same answer for all
    same = await asyncio.gather(*(ask("rf-same", 100) for _ in range(5)))
    assert sorted(r.status_code for r in same) == [200, 200, 200, 200, 202]
    assert len({r.json()["refund_id"] for r in same}) == 1
    order, ledger, events, _ = await _books(oid)
    assert order["state"] == "refunded" and order["refunded"] == 1000
    assert len(ledger) == 8 and sum(e["amount"] for e in ledger) == 0
    assert events == ["order.paid"] + ["order.refunded"] * 3
    refunds = await Refund.select(Refund.amount, Refund.state).where(Refund.order == oid).run()
    assert sorted((r["amount"], r["state"]) for r in refunds) == [
        (100, "succeeded"),
        (300, "succeeded"),
        (600, "succeeded"),
    ]


async def test_deferred_charges_at_once_charge_once(pay_client, paying_citizen):
    async with pay_client() as client:
        app_auth, _me, openid = await paying_citizen(client)
        oid = await _order(client, app_auth, 800, openid=openid, deferred=True)
        app = client.services.miniapps.apps["testgate"]
        results = await asyncio.gather(*(app.platform.payments.charge(oid) for _ in range(8)))
        assert {r["state"] for r in results} == {"paid"}
        order, ledger, events, _ = await _books(oid)
        assert order["state"] == "paid"
        assert _channel_credits(ledger) == [800] and sum(e["amount"] for e in ledger) == 0
        assert events == ["order.paid"]


async def test_payment_racing_close(sandbox_world, players):
    """The payment window ends while the payment's notice arrives: either the payment wins (paid, never
    closed) or the close wins (closed, and the money is booked as an overpayment to refund)."""
    client, app_auth, _me, openid, clock = sandbox_world
    wechat, _ = players
    orders = client.services.payments.orders
    oids = [await _order(client, app_auth, 500, openid=openid) for _ in range(6)]
    clock.advance(301)
    notices = [wechat.paid(oid, 500, ts=int(clock.time())) for oid in oids]
    notifications = client.services.payments.notifications
    half = len(oids) // 2
    # straight at the service, so neither side has HTTP work first; the closer starts before some of
    # the notices and after the others
    replies = await asyncio.gather(
        *(notifications.handle("wechatpay", h, b) for h, b in notices[:half]),
        orders.close_expired(),
        *(notifications.handle("wechatpay", h, b) for h, b in notices[half:]),
    )
    assert all(r[0].status == 204 for r in replies if not isinstance(r, int))
    for oid in oids:
        order, ledger, events, _ = await _books(oid)
        assert sum(e["amount"] for e in ledger) == 0 and _channel_credits(ledger) == [500]
        extra = await Overpayment.select().where(Overpayment.order == oid).run()
        if order["state"] == "paid":
            assert events == ["order.paid"] and extra == []
        else:
            assert order["state"] == "closed" and order["paid_at"] is None
            assert events == ["order.closed", "order.overpaid"]
            assert [(o["amount"], o["state"], o["reason"]) for o in extra] == [
                (500, "to_refund", "order_closed")
            ]


async def test_a_closed_order_is_not_paid_by_a_late_notice(sandbox_world, players):
    client, app_auth, _me, openid, clock = sandbox_world
    wechat, _ = players
    oid = await _order(client, app_auth, 500, openid=openid)
    clock.advance(301)
    assert await client.services.payments.orders.close_expired() == 1
    assert (await _wechat(client, *wechat.paid(oid, 500, ts=int(clock.time())))).status_code == 204
    order, ledger, events, _ = await _books(oid)
    assert order["state"] == "closed" and events == ["order.closed", "order.overpaid"]
    assert sum(e["amount"] for e in ledger) == 0 and _channel_credits(ledger) == [500]


@pytest.mark.timeout_sensitive
async def test_two_server_processes_on_one_database(
    env, players, channel_keys, settings, serve, free_port, tmp_path
):
    """Two workers (real ``shengshi serve`` processes sharing the database) receive one order's WeChat
    and Alipay notices at once, as a load balancer spreads them."""
    client, merchant = env
    wechat, alipay, keys_dir = channel_keys
    oid = await _order(client, merchant)
    base = {
        **os.environ,
        "SHENGSHI_DATABASE_URL": settings.database_url,
        "SHENGSHI_REDIS_URL": settings.redis_url,
        "SHENGSHI_STORE_PREFIX": f"{settings.store_prefix}workers:",
        "SHENGSHI_SECRET_KEY": settings.secret_key,
        "SHENGSHI_KEY_ENCRYPTION_KEY": settings.key_encryption_key,
        "SHENGSHI_PII_KEYS": settings.pii_keys,
        "SHENGSHI_LOG_LEVEL": "WARNING",
        "SHENGSHI_PAYMENT_CHANNELS": "sandbox,wechatpay,alipay",
        "SHENGSHI_WECHATPAY_MCHID": "1900000001",
        "SHENGSHI_WECHATPAY_APPID": "wxd678efh567hg6787",
        "SHENGSHI_WECHATPAY_APIV3_KEY": wechat.apiv3_key,
        "SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR": str(keys_dir),
        "SHENGSHI_ALIPAY_APP_ID": alipay.app_id,
        "SHENGSHI_ALIPAY_SELLER_ID": alipay.seller_id,
        "SHENGSHI_ALIPAY_PUBLIC_KEY_FILE": str(alipay.public_file),
    }
    procs, ports = [], []
    try:
        for n in range(2):
            (tmp_path / f"w{n}").mkdir()
            ports.append(free_port())
            env_n = {**base, "SHENGSHI_DATA_DIR": str(tmp_path / f"w{n}")}
            procs.append(await asyncio.to_thread(serve, env_n, ports[-1], tmp_path / f"w{n}.log"))
        wx_txn, ali_txn = "4200000" + secrets.token_hex(6), "2026112522001" + secrets.token_hex(4)
        async with httpx.AsyncClient(timeout=30) as http:
            calls = []
            for n in range(6):
                port = ports[n % 2]
                h, b = wechat.paid(oid, 1000, transaction_id=wx_txn)
                calls.append(
                    http.post(
                        f"http://127.0.0.1:{port}/api/v1/payments/notify/wechatpay", content=b, headers=h
                    )
                )
                h, b = alipay.notify(oid, "10.00", trade_no=ali_txn)
                calls.append(
                    http.post(f"http://127.0.0.1:{port}/api/v1/payments/notify/alipay", content=b, headers=h)
                )
            replies = await asyncio.gather(*calls)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.to_thread(proc.wait, 15)
    assert all(r.status_code in (200, 204) for r in replies), [r.text for r in replies]
    order, ledger, events, records = await _books(oid)
    assert order["state"] == "paid"
    assert _channel_credits(ledger) == [1000, 1000] and sum(e["amount"] for e in ledger) == 0
    assert sorted(events) == ["order.overpaid", "order.paid"]
    assert len(records) == 12 and {r["status"] for r in records} == {"applied"}

"""Orders through the API end to end on the sandbox, and signed webhooks with back-off and a log."""

import json

import httpx
import pytest

from payments.events import OwnerSubscribers
from payments.tables import LedgerEntry, WebhookAttempt, WebhookDelivery
from payments.webhooks import SIGNATURE_HEADER, WebhookDispatcher, verify_signature


@pytest.fixture
async def world(pay_client, paying_citizen, frozen_clock):
    async with pay_client(clock=frozen_clock) as client:
        app_auth, me, openid = await paying_citizen(client)
        yield client, app_auth, me, openid, frozen_clock


async def test_order_pay_refund_on_the_sandbox(world):
    client, app_auth, me, openid, _ = world
    body = {"reference": "parking-0001", "amount": 1500, "description": "好停车 停车费", "openid": openid}
    first = await client.post("/api/v1/payments/orders", json=body, headers=app_auth)
    again = await client.post("/api/v1/payments/orders", json=body, headers=app_auth)
    assert first.status_code == 201 and again.status_code == 200
    order = first.json()
    assert again.json()["order_id"] == order["order_id"] and order["state"] == "created"
    conflict = await client.post("/api/v1/payments/orders", json={**body, "amount": 1600}, headers=app_auth)
    assert conflict.status_code == 409 and conflict.json()["code"] == "reference_reused"

    oid = order["order_id"]
    assert (await client.get(f"/api/v1/payments/orders/{oid}", headers=me)).json()["amount"] == 1500
    pay = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "sandbox"}, headers=me)
    assert pay.status_code == 200 and pay.json()["pay"]["pay_url"].endswith(f"/sandbox/pay/{oid}")
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
    assert paid.json()["state"] == "paid"

    r1 = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds", json={"reference": "rf-1", "amount": 500}, headers=app_auth
    )
    r1_again = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds", json={"reference": "rf-1", "amount": 500}, headers=app_auth
    )
    assert r1.status_code == 202 and r1_again.status_code == 200
    assert r1_again.json()["refund_id"] == r1.json()["refund_id"]
    await client.post(
        f"/api/v1/payments/orders/{oid}/refunds", json={"reference": "rf-2", "amount": 1000}, headers=app_auth
    )
    final = (await client.get(f"/api/v1/payments/orders/{oid}", headers=app_auth)).json()
    assert final["state"] == "refunded" and final["refunded"] == 1500
    assert [r["state"] for r in final["refunds"]] == ["succeeded", "succeeded"]
    rows = await LedgerEntry.select(LedgerEntry.amount).where(LedgerEntry.order == oid).run()
    assert sum(r["amount"] for r in rows) == 0 and len(rows) == 6


async def test_strangers_see_no_order(world, login, new_phone, merchant_of):
    client, app_auth, _me, openid, _ = world
    oid = (
        await client.post(
            "/api/v1/payments/orders",
            json={"reference": "x-1", "amount": 100, "openid": openid},
            headers=app_auth,
        )
    ).json()["order_id"]
    other = await login(client, new_phone())
    assert (
        await client.get(
            f"/api/v1/payments/orders/{oid}", headers={"Authorization": f"Bearer {other['access_token']}"}
        )
    ).status_code == 404
    merchant = await client.services.auth.machines.create("merchant", name="another")
    import base64

    m = {
        "Authorization": "Basic "
        + base64.b64encode(f"{merchant['client_id']}:{merchant['client_secret']}".encode()).decode()
    }
    assert (await client.get(f"/api/v1/payments/orders/{oid}", headers=m)).status_code == 404
    assert (await client.get("/api/v1/payments/orders/not-a-uuid", headers=app_auth)).status_code == 404
    bad = await client.post(
        "/api/v1/payments/orders", json={"reference": "x-2", "amount": -5}, headers=app_auth
    )
    assert bad.status_code == 400


async def test_a_failing_receiver_gets_the_event_on_the_third_attempt(world):
    client, app_auth, me, openid, clock = world
    payments = client.services.payments
    endpoint = await payments.endpoints.add("miniapp:testgate", "https://merchant.example/hooks")
    seen = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500 if len(seen) <= 2 else 200)

    dispatcher = payments.webhooks
    await dispatcher._http.aclose()
    dispatcher._http = httpx.AsyncClient(transport=httpx.MockTransport(receiver))

    oid = (
        await client.post(
            "/api/v1/payments/orders",
            json={"reference": "wh-1", "amount": 700, "openid": openid},
            headers=app_auth,
        )
    ).json()["order_id"]
    await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)

    async def round_():
        await dispatcher.tick()
        await dispatcher.drain()

    await round_()
    assert len(seen) == 1
    await round_()  # not due yet: back-off holds it
    assert len(seen) == 1
    clock.advance(dispatcher.backoff(1) + 0.1)
    await round_()
    assert len(seen) == 2
    clock.advance(dispatcher.backoff(2) - 1)
    await round_()
    assert len(seen) == 2  # exponential: the second wait is longer
    clock.advance(1.2)
    await round_()
    assert len(seen) == 3

    delivered = seen[-1]
    body = delivered.read()
    event = json.loads(body)
    assert event["type"] == "order.paid" and event["data"]["order_id"] == oid
    assert verify_signature(delivered.headers[SIGNATURE_HEADER], body, endpoint["secret"], now=clock.time())
    assert not verify_signature(
        delivered.headers[SIGNATURE_HEADER], body + b" ", endpoint["secret"], now=clock.time()
    )
    delivery = (
        await WebhookDelivery.select()
        .where(WebhookDelivery.target == f"endpoint:{endpoint['endpoint_id']}")
        .first()
        .run()
    )
    assert delivery["state"] == "delivered" and delivery["attempts"] == 3
    log = (
        await WebhookAttempt.select()
        .where(WebhookAttempt.delivery == delivery["id"])
        .order_by(WebhookAttempt.attempt)
        .run()
    )
    assert [(a["attempt"], a["status_code"], a["ok"]) for a in log] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    # the mini-app's own payment-event handler got it too, through the same queue
    app_delivery = (
        await WebhookDelivery.select().where(WebhookDelivery.target == "miniapp:testgate").first().run()
    )
    assert app_delivery["state"] == "delivered"
    # later rounds send nothing more
    clock.advance(3600)
    await round_()
    assert len(seen) == 3


async def test_rotating_a_secret_signs_with_both(world):
    client, *_ = world
    payments = client.services.payments
    endpoint = await payments.endpoints.add("merchant:m1", "https://merchant.example/hooks")
    rotated = await payments.endpoints.rotate(endpoint["endpoint_id"])
    from payments.tables import WebhookEndpoint

    row = await WebhookEndpoint.select().where(WebhookEndpoint.id == endpoint["endpoint_id"]).first().run()
    secrets_ = payments.endpoints.secrets_of(row)
    assert secrets_ == [rotated["secret"], endpoint["secret"]]
    from payments.webhooks import sign

    header = sign(b"{}", secrets_, 1_800_000_000)
    assert header.count("v1=") == 2
    for s in secrets_:
        assert verify_signature(header, b"{}", s, now=1_800_000_000)


async def test_unpaid_orders_close_after_their_window(
    pay_client, merchant_of, login, new_phone, frozen_clock
):
    async with pay_client(clock=frozen_clock, order_ttl=300) as client:
        app_auth = await merchant_of(client)
        pair = await login(client, new_phone())
        me = {"Authorization": f"Bearer {pair['access_token']}"}
        code = (await client.post("/api/v1/miniapps/testgate/authorize", json={}, headers=me)).json()["code"]
        openid = (
            await client.post("/api/v1/miniapps/testgate/token", json={"code": code}, headers=app_auth)
        ).json()["openid"]
        orders = client.services.payments.orders

        async def order(reference, **extra):
            r = await client.post(
                "/api/v1/payments/orders",
                headers=app_auth,
                json={"reference": reference, "amount": 300, "openid": openid, **extra},
            )
            return r.json()["order_id"]

        oid, deferred = await order("late-1"), await order("ride-1", deferred=True)
        assert await orders.close_expired() == 0
        frozen_clock.advance(301)
        assert await orders.close_expired() == 1
        got = await client.get(f"/api/v1/payments/orders/{oid}", headers=me)
        assert got.json()["state"] == "closed", got.text
        assert (await client.get(f"/api/v1/payments/orders/{deferred}", headers=me)).json()[
            "state"
        ] == "created"
        r = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "sandbox"}, headers=me)
        assert r.status_code == 409 and r.json()["code"] == "order_not_payable"
        wechat = await client.post(
            f"/api/v1/payments/orders/{deferred}/pay", json={"channel": "wechatpay"}, headers=me
        )
        assert wechat.status_code == 503 and wechat.json()["code"] == "channel_unavailable"


async def test_an_event_left_undelivered_by_a_crash_is_sent_by_the_next_worker(world):
    client, app_auth, me, openid, clock = world
    payments = client.services.payments
    endpoint = await payments.endpoints.add("miniapp:testgate", "https://merchant.example/hooks")
    oid = (
        await client.post(
            "/api/v1/payments/orders",
            json={"reference": "crash-1", "amount": 900, "openid": openid},
            headers=app_auth,
        )
    ).json()["order_id"]
    await client.post(
        f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me
    )  # committed: paid + outbox event
    # the process dies here, before any delivery; another worker starts with its own dispatcher
    received = []
    fresh = WebhookDispatcher(
        clock,
        payments.endpoints,
        subscribers=OwnerSubscribers(),  # a worker of the payment centre alone: webhooks only
        queue_name="unused-without-redis",
        transport=httpx.MockTransport(lambda r: received.append(r) or httpx.Response(200)),
    )
    try:
        await fresh.tick()
    finally:
        await fresh.stop()
    assert len(received) == 1 and json.loads(received[0].read())["data"]["order_id"] == oid
    assert verify_signature(
        received[0].headers[SIGNATURE_HEADER], received[0].read(), endpoint["secret"], now=clock.time()
    )


async def test_deployments_sharing_a_redis_keep_their_webhook_jobs(
    pay_client, paying_citizen, settings, frozen_clock
):
    """The webhook queue's name carries ``SHENGSHI_STORE_PREFIX`` like every Redis key: a worker of another
    deployment on the same Redis never takes this deployment's jobs."""
    sent = {"a": [], "b": []}

    def recorder(name):
        return httpx.MockTransport(lambda r: sent[name].append(r) or httpx.Response(200))

    async with pay_client(store_prefix=f"{settings.store_prefix}dep-b:", clock=frozen_clock) as other:
        b = other.services.payments.webhooks
        await b._http.aclose()
        b._http = httpx.AsyncClient(transport=recorder("b"))
        async with pay_client(store_prefix=f"{settings.store_prefix}dep-a:", clock=frozen_clock) as client:
            a = client.services.payments.webhooks
            assert a.jobs.name == f"{settings.store_prefix}dep-a:webhooks"
            assert b.jobs.name == f"{settings.store_prefix}dep-b:webhooks"
            await a._http.aclose()
            a._http = httpx.AsyncClient(transport=recorder("a"))
            app_auth, me, openid = await paying_citizen(client)
            await client.services.payments.endpoints.add("miniapp:testgate", "https://m.example/h")
            for n in range(4):
                oid = (
                    await client.post(
                        "/api/v1/payments/orders",
                        json={"reference": f"dep-{n}", "amount": 100, "openid": openid},
                        headers=app_auth,
                    )
                ).json()["order_id"]
                await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
            await a.tick()
            await a.drain()
            await b.drain()
            if settings.uses_redis:
                assert a.jobs.queue_name == a.jobs.name
    assert len(sent["a"]) == 4 and sent["b"] == []

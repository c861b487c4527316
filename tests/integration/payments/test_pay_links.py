"""A partner merchant's order (made without a citizen) is paid through its pay link: the till shows the
link as a QR code, the citizen's app opens it, and the first citizen who pays it becomes its citizen."""

import asyncio
import time

import pytest

from tests.integration.payments.conftest import basic


@pytest.fixture
async def shop(pay_client, login, new_phone):
    async with pay_client() as client:
        cred = await client.services.auth.machines.create("merchant", name="沈阳老边饺子馆")
        citizens = []
        for _ in range(2):
            pair = await login(client, new_phone())
            citizens.append({"Authorization": f"Bearer {pair['access_token']}"})
        yield client, basic(cred), citizens


async def test_a_merchants_order_is_paid_through_its_pay_link(shop):
    client, merchant, (alice, bob) = shop
    body = {"reference": f"till-{time.time_ns()}", "amount": 4800, "description": "饺子 两盘"}
    r = await client.post("/api/v1/payments/orders", json=body, headers=merchant)
    assert r.status_code == 201, r.text
    order = r.json()
    oid = order["order_id"]
    assert order["pay_link"]["uri"] == f"shengshitong://pay?order={oid}"
    assert order["pay_link"]["url"].startswith("http") and order["pay_link"]["url"].endswith(f"pay={oid}")
    # the citizen's app opens the link: the order is shown, then paid
    seen = await client.get(f"/api/v1/payments/orders/{oid}", headers=alice)
    assert seen.status_code == 200 and seen.json()["amount"] == 4800
    assert seen.json()["merchant_name"] == "沈阳老边饺子馆"  # whom she pays
    pay = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "sandbox"}, headers=alice)
    assert pay.status_code == 200, pay.text
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=alice)
    assert paid.status_code == 200 and paid.json()["state"] == "paid" and paid.json()["pay_link"] is None
    mine = (await client.get("/api/v1/me/orders", headers=alice)).json()["items"]
    assert [o["order_id"] for o in mine] == [oid]
    # it is Alice's now: Bob sees nothing, and cannot pay it
    assert (await client.get(f"/api/v1/payments/orders/{oid}", headers=bob)).status_code == 404
    r = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "sandbox"}, headers=bob)
    assert r.status_code == 409 and r.json()["code"] == "order_claimed"
    # the merchant sees it paid, and creating it again returns it (the citizen came later)
    again = await client.post("/api/v1/payments/orders", json=body, headers=merchant)
    assert again.status_code == 200 and again.json()["order_id"] == oid and again.json()["state"] == "paid"


async def test_two_citizens_opening_one_pay_link_at_once(shop):
    client, merchant, citizens = shop
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": f"till-{time.time_ns()}", "amount": 100},
        headers=merchant,
    )
    oid = r.json()["order_id"]
    replies = await asyncio.gather(
        *(
            client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=c)
            for c in (citizens[0], citizens[1], citizens[0], citizens[1])
        )
    )
    codes = [(r.status_code, r.json().get("code")) for r in replies]
    winner = citizens[0] if codes[0][0] == 200 else citizens[1]
    assert sorted(c for c, _ in codes) == [200, 200, 409, 409]
    assert {code for status, code in codes if status == 409} == {"order_claimed"}
    assert (await client.get(f"/api/v1/payments/orders/{oid}", headers=winner)).json()["state"] == "paid"
    order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=merchant)).json()
    assert order["overpayments"] == [] and order["state"] == "paid"


async def test_what_a_merchant_cannot_ask_for(shop):
    client, merchant, _ = shop
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": "x-1", "amount": 100, "openid": "someone"},
        headers=merchant,
    )
    assert r.status_code == 422 and r.json()["code"] == "openid_not_allowed"
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": "x-2", "amount": 100, "deferred": True},
        headers=merchant,
    )
    assert r.status_code == 422 and r.json()["code"] == "deferred_needs_citizen"


async def test_the_enabled_channels_are_public_and_in_the_configured_order(pay_client, make_client):
    """What the wallet offers on a pay link: the deployment's channels, asked without signing in."""
    async with pay_client() as client:  # SHENGSHI_PAYMENT_CHANNELS=sandbox,wechatpay,alipay
        r = await client.get("/api/v1/payments/channels")
        assert r.status_code == 200, r.text
        assert r.json() == {"channels": ["sandbox", "wechatpay", "alipay"]}
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
        assert list(paths["/api/v1/payments/channels"]) == ["get"]
    async with make_client() as client:  # the default: the sandbox only
        assert (await client.get("/api/v1/payments/channels")).json() == {"channels": ["sandbox"]}
    async with make_client(payment_channels="") as client:
        assert (await client.get("/api/v1/payments/channels")).json() == {"channels": []}

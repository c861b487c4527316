"""The citizen hears of a payment and a refund in the inbox: the payment centre's order events reach the
message centre as an observer, through the same durable queue as every webhook, so a mini-app's order
and a merchant's order paid through its pay link both give "支付成功"; a refund gives "退款成功"; an
event delivered again gives no second message; and a template not approved yet loses nothing (the
delivery is retried until an operator approves it)."""

import time
from datetime import timedelta

import pytest

from payments.tables import WebhookDelivery
from tests.integration.messages.citizen import approve, inbox
from tests.integration.payments.conftest import basic

pytestmark = pytest.mark.storage
PAID, REFUNDED = "platform.payment_paid", "platform.payment_refunded"


@pytest.fixture
async def world(pay_client, paying_citizen, frozen_clock):
    async with pay_client(clock=frozen_clock, access_token_ttl=86400) as client:
        app_auth, me, openid = await paying_citizen(client)
        yield client, app_auth, me, openid, frozen_clock


async def dispatch(client):
    """One round of the webhook dispatcher, as its loop runs it: events fanned out, attempts run."""
    dispatcher = client.services.payments.webhooks
    await dispatcher.tick()
    await dispatcher.drain()


async def order(client, app_auth, openid, amount=1500, description="好停车 停车费"):
    body = {
        "reference": f"msg-{time.time_ns()}",
        "amount": amount,
        "description": description,
        "openid": openid,
    }
    r = await client.post("/api/v1/payments/orders", json=body, headers=app_auth)
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


async def pay(client, me, oid):
    r = await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "sandbox"}, headers=me)
    assert r.status_code == 200, r.text
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)
    assert paid.json()["state"] == "paid", paid.text


async def test_a_paid_order_and_its_refund_reach_the_inbox(world):
    client, app_auth, me, openid, clock = world
    await approve(client, PAID, REFUNDED)
    oid = await order(client, app_auth, openid)
    await pay(client, me, oid)
    assert await inbox(client, me) == []  # the event is on the queue, not delivered yet
    await dispatch(client)
    [paid] = await inbox(client, me)
    assert (paid["sender"], paid["title"], paid["body"]) == (
        "platform",
        "支付成功",
        "好停车 停车费已支付 15.00 元。",
    )
    assert paid["link"] == "/wallet#orders" and paid["read"] is False
    [english] = await inbox(client, me, "en")
    assert (english["title"], english["body"]) == ("Payment received", "¥15.00 paid for 好停车 停车费.")

    clock.advance(60)  # the inbox lists the newest first
    r = await client.post(
        f"/api/v1/payments/orders/{oid}/refunds", json={"reference": "rf-1", "amount": 500}, headers=app_auth
    )
    assert r.status_code == 202, r.text
    await dispatch(client)
    refund, _ = await inbox(client, me)
    assert (refund["title"], refund["body"]) == ("退款成功", "好停车 停车费已退款 5.00 元，原路退回。")
    unread = (await client.get("/api/v1/me/messages/unread-count", headers=me)).json()
    assert unread == {"unread": 2}


async def test_an_event_delivered_again_gives_one_message(world):
    client, app_auth, me, openid, _ = world
    await approve(client, PAID, REFUNDED)
    await pay(client, me, await order(client, app_auth, openid, amount=800))
    await dispatch(client)
    # the worker that delivered it died before recording so: the queue delivers it again
    target = WebhookDelivery.target == "observer:messages"
    delivered = await WebhookDelivery.select().where(target).run()
    assert [d["state"] for d in delivered] == ["delivered"]
    await WebhookDelivery.update({WebhookDelivery.state: "pending"}).where(target).run()
    await dispatch(client)
    again = await WebhookDelivery.select().where(target).run()
    assert [(d["state"], d["attempts"]) for d in again] == [("delivered", 2)]
    assert [m["title"] for m in await inbox(client, me)] == ["支付成功"]


async def test_a_merchants_order_paid_through_its_pay_link_reaches_the_payer(world, login, new_phone):
    client, _, _, _, _ = world
    await approve(client, PAID)
    merchant = basic(await client.services.auth.machines.create("merchant", name="沈阳老边饺子馆"))
    r = await client.post(
        "/api/v1/payments/orders",
        json={"reference": f"till-{time.time_ns()}", "amount": 4800, "description": "饺子 两盘"},
        headers=merchant,
    )
    oid = r.json()["order_id"]
    payer, bystander = [
        {"Authorization": f"Bearer {(await login(client, new_phone()))['access_token']}"} for _ in range(2)
    ]
    await pay(client, payer, oid)
    await dispatch(client)
    assert [(m["title"], m["body"]) for m in await inbox(client, payer)] == [
        ("支付成功", "饺子 两盘已支付 48.00 元。")
    ]
    assert await inbox(client, bystander) == []


async def test_a_payment_before_the_template_is_approved_is_told_once_it_is(world):
    client, app_auth, me, openid, clock = world
    await pay(client, me, await order(client, app_auth, openid, amount=100))
    await dispatch(client)
    assert await inbox(client, me) == []
    target = WebhookDelivery.target == "observer:messages"
    [waiting] = await WebhookDelivery.select().where(target).run()
    assert waiting["state"] == "pending" and "is not approved" in waiting["last_error"]

    await approve(client, PAID)
    clock.advance(timedelta(hours=1).total_seconds())  # past the retry's back-off
    await dispatch(client)
    assert [m["body"] for m in await inbox(client, me)] == ["好停车 停车费已支付 1.00 元。"]

"""Payments and refunds per hour, and the webhook backlog, as the operators' dashboard shows them."""

import pytest

pytestmark = pytest.mark.storage


async def test_paid_and_refunded_this_hour_and_the_backlog(pay_client, paying_citizen, console_login):
    async with pay_client() as client:
        app_auth, me, openid = await paying_citizen(client)
        await console_login(client, "watcher", "readonly")
        empty = (await client.get("/admin/dashboard/frame")).json()
        assert sum(empty["payments"]["paid_count"]) == 0

        body = {"reference": "dash-1", "amount": 1500, "description": "停车费", "openid": openid}
        oid = (await client.post("/api/v1/payments/orders", json=body, headers=app_auth)).json()["order_id"]
        await client.post(f"/api/v1/payments/orders/{oid}/pay", json={"channel": "sandbox"}, headers=me)
        assert (await client.post(f"/api/v1/payments/sandbox/orders/{oid}/pay", headers=me)).json()[
            "state"
        ] == "paid"
        r = await client.post(
            f"/api/v1/payments/orders/{oid}/refunds",
            json={"reference": "rf-1", "amount": 500},
            headers=app_auth,
        )
        assert r.status_code == 202

        client.services.console.dashboard._frame = None  # not the cached frame of a second ago
        frame = (await client.get("/admin/dashboard/frame")).json()
        pay = frame["payments"]
        assert len(pay["hours"]) == 24
        assert (pay["paid_count"][-1], pay["paid_fen"][-1]) == (1, 1500)
        assert (pay["refund_count"][-1], pay["refund_fen"][-1]) == (1, 500)
        assert sum(pay["paid_count"][:-1]) == 0
        # paid and refunded events wait in the outbox: this test runs no dispatcher
        assert frame["webhooks"]["outbox"] == 2  # order.paid and order.refunded

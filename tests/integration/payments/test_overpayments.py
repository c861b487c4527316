"""A second real payment of a paid order (another channel, another transaction) is money we hold: it is
booked, flagged for refund, told to the owner, shown on the order and matched in reconciliation."""

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

from payments.tables import LedgerEntry, OutboxEvent, Overpayment


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


async def test_a_second_payment_is_held_for_refund_and_reconciles(
    pay_client, merchant_of, players, shengshi_cli, tmp_path
):
    wechat, alipay = players
    async with pay_client() as client:
        merchant = await merchant_of(client)
        r = await client.post(
            "/api/v1/payments/orders",
            json={"reference": f"op-{time.time_ns()}", "amount": 1000},
            headers=merchant,
        )
        oid = r.json()["order_id"]

        async def wx(headers, body):
            r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
            assert r.status_code == 204, r.text

        async def ali(headers, body):
            r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
            assert r.content == b"success", r.content

        await wx(*wechat.paid(oid, 1000, transaction_id="4200000001"))
        # the citizen also paid with Alipay, and once more with WeChat (another transaction)
        await ali(*alipay.notify(oid, "10.00", trade_no="2026112522001001"))
        await ali(*alipay.notify(oid, "10.00", trade_no="2026112522001001"))  # another notice, same trade
        await wx(*wechat.paid(oid, 1000, transaction_id="4200000002"))
        await wx(*wechat.paid(oid, 1000, transaction_id="4200000001"))  # the first payment told again

        order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=merchant)).json()
        assert order["state"] == "paid" and order["channel"] == "wechatpay" and order["refunded"] == 0
        assert [(o["channel"], o["amount"], o["reason"], o["state"]) for o in order["overpayments"]] == [
            ("alipay", 1000, "already_paid", "to_refund"),
            ("wechatpay", 1000, "already_paid", "to_refund"),
        ]
        events = await _events(oid)
        assert [t for t, _ in events] == ["order.paid", "order.overpaid", "order.overpaid"]
        assert events[1][1]["overpaid_amount"] == 1000 and events[1][1]["overpaid_channel"] == "alipay"
        ledger = await LedgerEntry.select().where(LedgerEntry.order == oid).run()
        assert sum(e["amount"] for e in ledger) == 0
        assert sum(e["amount"] for e in ledger if e["account"] == "suspense:overpaid") == -2000

        # the Alipay one is refunded at Alipay's console (its notice: the trade's full refund)
        await ali(
            *alipay.notify(
                oid,
                "10.00",
                trade_no="2026112522001001",
                status="TRADE_CLOSED",
                extra={"refund_fee": "10.00", "out_biz_no": "OP-RF-1"},
            )
        )
        order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=merchant)).json()
        assert order["state"] == "paid" and order["refunded"] == 0 and order["refunds"] == []
        assert [(o["channel"], o["state"]) for o in order["overpayments"]] == [
            ("alipay", "refunded"),
            ("wechatpay", "to_refund"),
        ]
        assert [t for t, _ in await _events(oid)][-1] == "order.overpayment_refunded"
        ledger = await LedgerEntry.select().where(LedgerEntry.order == oid).run()
        assert sum(e["amount"] for e in ledger) == 0
        assert sum(e["amount"] for e in ledger if e["account"] == "suspense:overpaid") == -1000
        assert await Overpayment.count().where(Overpayment.state == "to_refund").run() == 1

        # the channels' statements list every payment they took: all of ours match
        day = datetime.now(timezone(timedelta(hours=8))).date().isoformat()
        statements = {
            "wechatpay": f"4200000001,{oid},payment,1000\n4200000002,{oid},payment,1000\n",
            "alipay": f"2026112522001001,{oid},payment,1000\n2026112522001001/OP-RF-1,{oid},refund,1000\n",
        }
        for channel, rows in statements.items():
            path = tmp_path / f"{channel}.csv"
            path.write_text("txn_id,order_id,type,amount_fen\n" + rows)
            out = await asyncio.to_thread(
                shengshi_cli,
                "payments",
                "reconcile",
                "--date",
                day,
                "--channel",
                channel,
                "--statement",
                str(path),
            )
            assert out.returncode == 0, out.stderr
            assert "2 statement rows, 2 ledger rows, 0 mismatches" in out.stderr, (
                channel,
                out.stderr,
                out.stdout,
            )


async def test_an_overpayment_refunded_in_parts_at_the_channel(pay_client, merchant_of, players):
    """A channel's console refunds any part of a payment: refunding an overpayment in parts is recorded
    part by part (its refunded amount grows, it is refunded when all of it is), never refused."""
    wechat, alipay = players
    async with pay_client() as client:
        merchant = await merchant_of(client)
        r = await client.post(
            "/api/v1/payments/orders",
            json={"reference": f"opp-{time.time_ns()}", "amount": 1000},
            headers=merchant,
        )
        oid = r.json()["order_id"]

        async def wx(headers, body, status=204):
            r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
            assert r.status_code == status, r.text

        async def ali(headers, body):
            r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
            assert r.content == b"success", r.content

        async def overpayments():
            order = (await client.get(f"/api/v1/payments/orders/{oid}", headers=merchant)).json()
            assert order["state"] == "paid" and order["refunded"] == 0 and order["refunds"] == []
            return [(o["channel"], o["amount"], o["refunded"], o["state"]) for o in order["overpayments"]]

        await wx(*wechat.paid(oid, 1000, transaction_id="4200000101"))
        await wx(*wechat.paid(oid, 1000, transaction_id="4200000102"))  # paid twice with WeChat
        await ali(*alipay.notify(oid, "10.00", trade_no="2026112522001101"))  # and once with Alipay
        # WeChat: 400 of the second payment refunded at the console, then the rest
        first = wechat.refunded(oid, "OP-W-1", 400, 1000, transaction_id="4200000102", refund="5000000401")
        await wx(*first)
        await wx(*first)  # WeChat's resend
        # the same refund told under another notification id changes nothing either
        await wx(*wechat.refunded(oid, "OP-W-1", 400, 1000, transaction_id="4200000102", refund="5000000401"))
        assert await overpayments() == [
            ("wechatpay", 1000, 400, "to_refund"),
            ("alipay", 1000, 0, "to_refund"),
        ]
        # more than is left of it is refused (recorded)
        await wx(*wechat.refunded(oid, "OP-W-X", 700, 1000, transaction_id="4200000102"), status=400)
        await wx(*wechat.refunded(oid, "OP-W-2", 600, 1000, transaction_id="4200000102", refund="5000000402"))
        # Alipay: its running total, 3.00 then all of it
        for total, out_biz_no in (("3.00", "OP-A-1"), ("10.00", "OP-A-2")):
            await ali(
                *alipay.notify(
                    oid,
                    "10.00",
                    trade_no="2026112522001101",
                    extra={"refund_fee": total, "out_biz_no": out_biz_no},
                )
            )
        assert await overpayments() == [
            ("wechatpay", 1000, 1000, "refunded"),
            ("alipay", 1000, 1000, "refunded"),
        ]
        assert await Overpayment.count().where(Overpayment.state == "to_refund").run() == 0
        events = [(t, p) for t, p in await _events(oid) if t == "order.overpayment_refunded"]
        assert [
            (p["overpaid_channel"], p["refund_amount"], p["overpayment_refunded"]) for _, p in events
        ] == [
            ("wechatpay", 400, 400),
            ("wechatpay", 600, 1000),
            ("alipay", 300, 300),
            ("alipay", 700, 1000),
        ]
        ledger = await LedgerEntry.select().where(LedgerEntry.order == oid).run()
        assert sum(e["amount"] for e in ledger) == 0
        assert sum(e["amount"] for e in ledger if e["account"] == "suspense:overpaid") == 0

"""Reconciliation (对账) from the command line, and its report over the API as JSON and CSV."""

import asyncio
import base64
import csv
import io
import json
import time
from datetime import datetime, timedelta, timezone

from payments.tables import LedgerEntry


async def test_reconcile_lists_every_kind_of_mismatch(
    pay_client, merchant_of, players, shengshi_cli, tmp_path
):
    wechat, _ = players
    async with pay_client() as client:
        merchant = await merchant_of(client)
        ids = []
        for n, amount in enumerate((1000, 2500, 700)):
            r = await client.post(
                "/api/v1/payments/orders",
                json={"reference": f"rc-{n}-{time.time_ns()}", "amount": amount},
                headers=merchant,
            )
            ids.append(r.json()["order_id"])
            headers, body = wechat.paid(ids[-1], amount)
            r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
            assert r.status_code == 204
        rows = await LedgerEntry.select().where(LedgerEntry.account == "channel:wechatpay").run()
        txn = {str(r["order"]): r["channel_txn"] for r in rows}
        assert len(txn) == 3
        statement = tmp_path / "wechat-statement.csv"
        statement.write_text(
            "txn_id,order_id,type,amount_fen\n"
            f"{txn[ids[0]]},{ids[0]},payment,1000\n"
            f"{txn[ids[1]]},{ids[1]},payment,2400\n"
            "4200000000999,unknown-order,payment,300\n"
        )
        day = datetime.now(timezone(timedelta(hours=8))).date().isoformat()
        out = await asyncio.to_thread(
            shengshi_cli,
            "payments",
            "reconcile",
            "--date",
            day,
            "--channel",
            "wechatpay",
            "--statement",
            str(statement),
            "--json",
        )
        assert out.returncode == 0, out.stderr
        found = {(m["kind"], m["order_id"]) for m in map(json.loads, out.stdout.splitlines())}
        assert found == {
            ("amount_differs", ids[1]),
            ("missing_ours", "unknown-order"),
            ("missing_theirs", ids[2]),
        }
        assert "3 statement rows, 3 ledger rows, 3 mismatches" in out.stderr

        operator = await client.services.auth.machines.create("operator", name="finance")
        op = {
            "Authorization": "Basic "
            + base64.b64encode(f"{operator['client_id']}:{operator['client_secret']}".encode()).decode()
        }
        r = await client.get(
            "/api/v1/payments/reconciliation", params={"date": day, "channel": "wechatpay"}, headers=op
        )
        assert r.status_code == 200 and len(r.json()["mismatches"]) == 3
        r = await client.get(
            "/api/v1/payments/reconciliation",
            params={"date": day, "channel": "wechatpay", "format": "csv"},
            headers=op,
        )
        assert r.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(r.text)))
        assert {row["kind"] for row in table} == {"amount_differs", "missing_ours", "missing_theirs"}
        assert (
            await client.get(
                "/api/v1/payments/reconciliation",
                params={"date": day, "channel": "wechatpay"},
                headers=merchant,
            )
        ).status_code == 401
        missing = await client.get(
            "/api/v1/payments/reconciliation",
            params={"date": "2020-01-01", "channel": "wechatpay"},
            headers=op,
        )
        assert missing.status_code == 404
        bad = await client.get(
            "/api/v1/payments/reconciliation", params={"date": "yesterday", "channel": "x"}, headers=op
        )
        assert bad.status_code == 400  # a query parameter that is not a date, named
        assert [(e["key"], e["source"]) for e in bad.json()["errors"]] == [("date", "query")]


def test_duplicates_and_one_order_under_two_transactions():
    """The comparison itself: a transaction booked twice on either side is reported (not hidden by a
    dictionary keyed on it), and one order's payment under another transaction id is one mismatch."""
    from payments.reconciliation import compare

    ours = [
        {"txn_id": "T1", "order_id": "o1", "type": "payment", "amount": 1000},
        {"txn_id": "T1", "order_id": "o1", "type": "payment", "amount": 1000},  # credited twice
        {"txn_id": "T2", "order_id": "o2", "type": "payment", "amount": 500},
        {"txn_id": "T3", "order_id": "o3", "type": "payment", "amount": 700},
        {"txn_id": "R9", "order_id": "o9", "type": "refund", "amount": 100},
    ]
    theirs = [
        {"txn_id": "T1", "order_id": "o1", "type": "payment", "amount": 1000},
        {"txn_id": "T2", "order_id": "o2", "type": "payment", "amount": 500},
        {"txn_id": "T2", "order_id": "o2", "type": "payment", "amount": 500},  # listed twice
        {"txn_id": "T3-other", "order_id": "o3", "type": "payment", "amount": 700},
        {"txn_id": "T4", "order_id": "o4", "type": "payment", "amount": 300},
    ]
    found = sorted(
        (
            m["kind"],
            m["order_id"],
            m["txn_id"],
            m["their_txn_id"],
            m["our_amount"],
            m["their_amount"],
            m["count"],
        )
        for m in compare(ours, theirs)
    )
    assert found == [
        ("duplicate_ours", "o1", "T1", "", 2000, 1000, 2),
        ("duplicate_theirs", "o2", "T2", "", 500, 1000, 2),
        ("missing_ours", "o4", "T4", "", None, 300, 1),
        ("missing_theirs", "o9", "R9", "", 100, None, 1),
        ("txn_differs", "o3", "T3", "T3-other", 700, 700, 1),
    ]


async def test_one_mismatch_is_reported_as_such(pay_client, merchant_of, players, shengshi_cli, tmp_path):
    wechat, _ = players
    async with pay_client() as client:
        merchant = await merchant_of(client)
        r = await client.post(
            "/api/v1/payments/orders",
            json={"reference": f"one-{time.time_ns()}", "amount": 100},
            headers=merchant,
        )
        oid = r.json()["order_id"]
        headers, body = wechat.paid(oid, 100, transaction_id="4200000111")
        assert (
            await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
        ).status_code == 204
        statement = tmp_path / "one.csv"
        statement.write_text(f"txn_id,order_id,type,amount_fen\n4200000222,{oid},payment,100\n")
        day = datetime.now(timezone(timedelta(hours=8))).date().isoformat()
        out = await asyncio.to_thread(
            shengshi_cli,
            "payments",
            "reconcile",
            "--date",
            day,
            "--channel",
            "wechatpay",
            "--statement",
            str(statement),
        )
        assert out.returncode == 0, out.stderr
        assert "1 statement row, 1 ledger row, 1 mismatch" in out.stderr
        assert "txn_differs" in out.stdout and "theirs_txn=4200000222" in out.stdout


async def test_a_day_is_the_channels_business_day_not_our_booking_time(
    pay_client, merchant_of, players, shengshi_cli, tmp_path, frozen_clock
):
    """Channels cut their statements by their own transaction time. A WeChat payment made at 23:59:58 on
    the 27th whose notice reaches us after midnight, and an Alipay refund likewise, belong to the 27th
    (WeChat's success_time, Alipay's gmt_refund); a payment whose channel tells no time (the sandbox)
    belongs to the day we booked it."""
    wechat, alipay = players
    china = timezone(timedelta(hours=8))
    frozen_clock.set(datetime(2026, 11, 28, 0, 0, 3, tzinfo=china))  # just after midnight in Shenyang
    async with pay_client(clock=frozen_clock) as client:
        merchant = await merchant_of(client)

        async def order(amount):
            r = await client.post(
                "/api/v1/payments/orders",
                json={"reference": f"day-{time.time_ns()}", "amount": amount},
                headers=merchant,
            )
            return r.json()["order_id"]

        late_wx, late_ali = await order(900), await order(500)
        headers, body = wechat.paid(
            late_wx,
            900,
            transaction_id="4200000900",
            resource={"success_time": "2026-11-27T23:59:58+08:00"},
            ts=int(frozen_clock.time()),
        )
        r = await client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
        assert r.status_code == 204, r.text
        for extra in (
            {"gmt_payment": "2026-11-27 23:50:00"},
            {
                "gmt_payment": "2026-11-27 23:50:00",
                "refund_fee": "2.00",
                "out_biz_no": "RF-LATE",
                "gmt_refund": "2026-11-27 23:59:59.500",
            },
        ):
            headers, body = alipay.notify(late_ali, "5.00", trade_no="2026112722001500", extra=extra)
            r = await client.post("/api/v1/payments/notify/alipay", content=body, headers=headers)
            assert r.content == b"success"
        frozen_clock.advance(60)
        # the sandbox tells no time of its own: the day we booked it
        sandbox_paid = await order(300)
        sandbox = client.services.payments.notifications.channels["sandbox"]
        reply, _ = await client.services.payments.notifications.handle(
            "sandbox",
            *sandbox.callback(
                {"type": "payment.succeeded", "order_id": sandbox_paid, "amount": 300, "txn_id": "sbx_day"},
                ts=int(frozen_clock.time()),
            ),
        )
        assert reply.status == 200

    async def reconcile(day, channel, rows):
        path = tmp_path / f"{channel}-{day}.csv"
        path.write_text("txn_id,order_id,type,amount_fen\n" + "".join(f"{r}\n" for r in rows))
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
        return out

    for day, channel, rows in (
        ("2026-11-27", "wechatpay", [f"4200000900,{late_wx},payment,900"]),
        ("2026-11-28", "wechatpay", []),
        (
            "2026-11-27",
            "alipay",
            [f"2026112722001500,{late_ali},payment,500", f"2026112722001500/RF-LATE,{late_ali},refund,200"],
        ),
        ("2026-11-28", "alipay", []),
        ("2026-11-28", "sandbox", [f"sbx_day,{sandbox_paid},payment,300"]),
    ):
        out = await reconcile(day, channel, rows)
        assert f"{len(rows)} statement row" in out.stderr and "0 mismatches" in out.stderr, (
            day,
            channel,
            out.stderr,
            out.stdout,
        )

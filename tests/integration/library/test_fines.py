"""一码借阅's money: an overdue return becomes a deferred fine order in the payment centre; an unpaid fine
takes the reader out of good standing (信用免押 no more): a loan needs the fine paid or a deposit, which is
refunded when the reader leaves with nothing borrowed and nothing owed. The due-date reminder is
scheduled with the loan and withdrawn at the return."""

from datetime import timedelta, timezone

import pytest

from miniapps.contract import PaymentEvent
from tests.integration.library.conftest import desk_scan
from tests.integration.messages.citizen import approve, subscribe

pytestmark = pytest.mark.storage


async def test_a_fine_is_a_deferred_order_and_paying_it_restores_good_standing(bench):
    client, citizen, desk, clock = bench
    reader = await citizen()
    lent = await desk_scan(client, reader, desk, clock, action="checkout", item="LN0000001")
    assert lent["result"] == "allow"
    clock.advance(int(timedelta(days=33).total_seconds()))  # due at the end of day 30: three days late
    back = await desk_scan(client, reader, desk, clock, action="checkin", item="LN0000001")
    assert back["data"]["fine"] == 30 and back["display"]["subtitle"] == "逾期罚款 ¥0.30"
    orders = (await client.get("/api/v1/me/orders", params={"unpaid": "true"}, headers=reader)).json()
    assert orders["unpaid_total"] == 30 and orders["items"][0]["deferred"] is True
    assert orders["items"][0]["description"] == "辽宁省图书馆 逾期罚款"

    standing = (await client.get("/api/v1/apps/library/standing?library=LNLIB", headers=reader)).json()
    assert standing["good_standing"] is False and standing["unpaid_fines"] == 30
    refused = await desk_scan(client, reader, desk, clock, action="checkout", item="LN0000002")
    assert (refused["result"], refused["reason"]) == ("deny", "deposit_required")

    paid = await client.post("/api/v1/apps/library/fines/pay", headers=reader)
    assert paid.status_code == 200 and paid.json() == {"orders": 1, "unpaid": 0}, paid.text
    standing = (await client.get("/api/v1/apps/library/standing?library=LNLIB", headers=reader)).json()
    assert standing["good_standing"] is True and standing["unpaid_fines"] == 0
    assert (await desk_scan(client, reader, desk, clock, action="checkout", item="LN0000002"))[
        "result"
    ] == "allow"
    loans = (await client.get("/api/v1/apps/library/loans", headers=reader)).json()["items"]
    fined = next(x for x in loans if x["barcode"] == "LN0000001")
    assert fined["fine"] == 30 and fined["fine_paid"] is True


async def test_a_deposit_lets_a_reader_with_fines_borrow_and_comes_back_when_they_leave(bench):
    client, citizen, desk, clock = bench
    reader, good = await citizen(), await citizen()
    r = await client.post("/api/v1/apps/library/deposit", json={"library": "LNLIB"}, headers=good)
    assert r.status_code == 409 and r.json()["code"] == "deposit_not_needed"  # 信用免押

    await desk_scan(client, reader, desk, clock, action="checkout", item="LN0000001")
    clock.advance(int(timedelta(days=40).total_seconds()))
    await desk_scan(client, reader, desk, clock, action="checkin", item="LN0000001")
    r = await client.post("/api/v1/apps/library/deposit", json={"library": "LNLIB"}, headers=reader)
    assert r.status_code == 201, r.text
    deposit = r.json()["deposit"]
    assert deposit["state"] == "pending" and deposit["amount"] == 10000
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{deposit['order_id']}/pay", headers=reader)
    assert paid.json()["state"] == "paid", paid.text
    # the event of the order reaches the app (delivered at least once: twice changes nothing)
    app = client.services.miniapps.apps["library"]
    event = PaymentEvent(
        type="order.paid",
        order_id=deposit["order_id"],
        reference="library-deposit-x",
        openid="",
        amount=10000,
    )
    await app.on_payment_event(event)
    await app.on_payment_event(event)
    lent = await desk_scan(client, reader, desk, clock, action="checkout", item="LN0000002")
    assert lent["result"] == "allow", lent  # fines unpaid, but the deposit stands for them

    r = await client.delete("/api/v1/apps/library/deposit?library=LNLIB", headers=reader)
    assert r.status_code == 409 and r.json()["code"] == "deposit_in_use"
    await desk_scan(client, reader, desk, clock, action="checkin", item="LN0000002")
    await client.post("/api/v1/apps/library/fines/pay", headers=reader)
    r = await client.delete("/api/v1/apps/library/deposit?library=LNLIB", headers=reader)
    assert r.status_code == 200 and r.json()["deposit"]["state"] == "refunded", r.text
    order = await client.services.miniapps.apps["library"].platform.payments.order(deposit["order_id"])
    assert order["refunded"] == 10000, order


async def test_the_due_date_reminder_is_scheduled_and_withdrawn_at_the_return(bench):
    from messages.tables import Message

    client, citizen, desk, clock = bench
    await approve(client, "library.due_soon")
    reader = await citizen()
    await subscribe(client, reader, "library.due_soon")
    lent = await desk_scan(client, reader, desk, clock, action="checkout", item="LN0000003")
    key = f"library/library-due-{lent['data']['loan_id']}-0"
    row = await Message.select().where(Message.idempotency == key).first()
    assert row is not None and row["cancelled_at"] is None, "no reminder scheduled"
    # 3 days before the due date (2026-12-25, end of the day), at 09:00 China time
    assert (
        row["visible_at"].astimezone(timezone(timedelta(hours=8))).isoformat() == "2026-12-22T09:00:00+08:00"
    )
    await desk_scan(client, reader, desk, clock, action="checkin", item="LN0000003")
    row = await Message.select().where(Message.idempotency == key).first()
    assert row["cancelled_at"] is not None

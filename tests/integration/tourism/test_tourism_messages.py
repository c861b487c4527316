"""好游玩's session reminder as the buyer sees it: an hour before the timed session of a paid order opens,
to a buyer who subscribed; none for a session already open; withdrawn when the order's last ticket is
refunded (not while a companion's ticket is left)."""

from datetime import UTC, datetime

import pytest

from tests.integration.messages.citizen import approve, inbox, subscribe

pytestmark = pytest.mark.storage
REMINDER = "tourism.session_reminder"


async def buy(client, me, day, window, holders):
    """Tickets for ``holders`` in A-MUKDEN's session of ``day`` and ``window``, paid on the sandbox, the
    payment's event delivered as the dispatcher delivers it."""
    sessions = (
        await client.get("/api/v1/apps/tourism/sessions", params={"attraction": "A-MUKDEN", "day": day})
    ).json()["items"]
    target = next(s for s in sessions if s["window"] == window)
    r = await client.post(
        "/api/v1/apps/tourism/tickets",
        json={"session_id": target["session_id"], "holders": holders},
        headers=me,
    )
    assert r.status_code == 201, r.text
    purchase = r.json()
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{purchase['order_id']}/pay", headers=me)
    assert paid.json()["state"] == "paid"
    dispatcher = client.services.payments.webhooks
    await dispatcher.tick()
    await dispatcher.drain()
    return purchase


async def test_a_subscriber_is_reminded_an_hour_before_a_paid_session_opens(park):
    client, clock, _, _, visitor = park  # 2026-11-25 09:00 China time
    await approve(client, REMINDER)
    me, unsubscribed = await visitor(), await visitor()
    await subscribe(client, me, REMINDER, "standing")
    await buy(client, me, "2026-11-25", "12:00-16:30", ["吴十", "吴小十"])
    await buy(client, me, "2026-11-25", "08:30-12:00", ["吴十"])  # open already: nothing to remind of
    await buy(client, unsubscribed, "2026-11-25", "12:00-16:30", ["王五"])
    tickets = (await client.get("/api/v1/apps/tourism/tickets", headers=me)).json()["items"]
    assert {t["state"] for t in tickets} == {"paid"}  # the payment events reached tourism

    clock.set(datetime(2026, 11, 25, 2, 59, tzinfo=UTC))  # 10:59
    assert await inbox(client, me) == []
    clock.set(datetime(2026, 11, 25, 3, 0, tzinfo=UTC))  # 11:00, an hour before 12:00
    [message] = await inbox(client, me)
    assert message["sender"] == "tourism" and message["title"] == "入园时段提醒"
    assert (
        message["body"]
        == "您购买的沈阳故宫博物院门票 12:00-16:30 场次将于 11月25日 12:00 开始入园，刷市民码即可入园。"
    )
    [english] = await inbox(client, me, "en")
    assert english["body"] == (
        "Entry to Shenyang Palace Museum (Mukden Palace) for your 12:00-16:30 session opens at 25 Nov 12:00:"
        " show your citizen code at the gate."
    )
    assert await inbox(client, unsubscribed) == []


async def test_the_reminder_goes_when_the_orders_last_ticket_is_refunded(park):
    client, clock, _, _, visitor = park
    await approve(client, REMINDER)
    alone, party = await visitor(), await visitor()
    for me in (alone, party):
        await subscribe(client, me, REMINDER, "standing")
    day, window = "2026-11-27", "08:30-12:00"  # refundable until the day before
    single = await buy(client, alone, day, window, ["郑一"])
    pair = await buy(client, party, day, window, ["钱二", "钱小二"])
    for ticket in (single["tickets"][0], pair["tickets"][0]):
        owner = alone if ticket in single["tickets"] else party
        r = await client.post(f"/api/v1/apps/tourism/tickets/{ticket['ticket_id']}/refund", headers=owner)
        assert r.status_code == 201, r.text

    clock.set(datetime(2026, 11, 26, 23, 30, tzinfo=UTC))  # 07:30 on the 27th, China time
    assert await inbox(client, alone) == []  # nothing left to use: withdrawn
    assert [m["title"] for m in await inbox(client, party)] == ["入园时段提醒"]  # a companion still goes

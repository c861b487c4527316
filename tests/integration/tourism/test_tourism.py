"""好游玩 through HTTP: buy for a party, enter by code once per ticket, the last ticket, refunds, hotels."""

import asyncio
import base64
from datetime import datetime, timedelta

import pytest


async def session(client, day):
    items = (
        await client.get("/api/v1/apps/tourism/sessions", params={"attraction": "A-MUKDEN", "day": day})
    ).json()
    return items["items"][0]


async def enter(client, clock, scanner, me):
    clock.advance(31)
    token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    return (await client.post("/api/v1/scans", json={"token": token}, headers=scanner["headers"])).json()


async def test_a_party_enters_one_by_one_and_a_used_ticket_is_refused(park):
    client, clock, gate, _, visitor = park
    me = await visitor()
    today = await session(client, "2026-11-25")
    r = await client.post(
        "/api/v1/apps/tourism/tickets",
        json={"session_id": today["session_id"], "holders": ["吴十", "吴小十"]},
        headers=me,
    )
    assert r.status_code == 201, r.text
    purchase = r.json()
    assert purchase["amount"] == 2 * 5000  # ¥50 a ticket at 沈阳故宫 and len(purchase["tickets"]) == 2
    unpaid = await enter(client, clock, gate, me)
    assert unpaid["result"] == "deny" and unpaid["reason"] == "no_ticket"
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{purchase['order_id']}/pay", headers=me)
    assert paid.json()["state"] == "paid"
    first, second = await enter(client, clock, gate, me), await enter(client, clock, gate, me)
    assert first["result"] == second["result"] == "allow"
    assert {first["data"]["holder"], second["data"]["holder"]} == {"吴十", "吴小十"}
    third = await enter(client, clock, gate, me)
    assert third["result"] == "deny" and third["reason"] == "already_used"


@pytest.mark.storage
async def test_a_retried_scan_does_not_admit_the_companion(park):
    """A gate that did not hear the answer sends the same record again: it gets the same answer, and the
    companion's ticket stays unused (concurrent retries on PostgreSQL too)."""
    from miniapps.tourism.tables import Ticket

    client, clock, gate, _, visitor = park
    me = await visitor()
    today = await session(client, "2026-11-25")
    r = await client.post(
        "/api/v1/apps/tourism/tickets",
        json={"session_id": today["session_id"], "holders": ["郑一", "郑小一"]},
        headers=me,
    )
    purchase = r.json()
    await client.post(f"/api/v1/payments/sandbox/orders/{purchase['order_id']}/pay", headers=me)
    clock.advance(31)
    token = (await client.get("/api/v1/codes/current", headers=me)).json()["token"]
    body = {"token": token, "record_id": "gate3-000117"}
    answers = await asyncio.gather(
        *(client.post("/api/v1/scans", json=body, headers=gate["headers"]) for _ in range(4))
    )
    answers.append(await client.post("/api/v1/scans", json=body, headers=gate["headers"]))
    assert {a.json()["result"] for a in answers} == {"allow"}
    assert len({a.json()["data"]["ticket_id"] for a in answers}) == 1
    states = await Ticket.select(Ticket.state).where(Ticket.order_id == purchase["order_id"]).run()
    assert sorted(t["state"] for t in states) == ["paid", "used"]  # the companion can still enter


async def test_the_last_ticket_goes_to_one_buyer(park):
    client, _, _, _, visitor = park
    from miniapps.tourism.tables import TicketSession

    target = await session(client, "2026-11-27")
    await (
        TicketSession.update({TicketSession.capacity: 1})
        .where(TicketSession.id == target["session_id"])
        .run()
    )
    buyers = [await visitor() for _ in range(5)]
    results = await asyncio.gather(
        *(
            client.post(
                "/api/v1/apps/tourism/tickets",
                json={"session_id": target["session_id"], "holders": ["游客"]},
                headers=b,
            )
            for b in buyers
        )
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409, 409]
    assert (await session(client, "2026-11-27"))["left"] == 0


async def test_refund_before_the_visit_day_only(park):
    client, _clock, _gate, _, visitor = park
    me = await visitor()
    later = await session(client, "2026-11-28")
    purchase = (
        await client.post(
            "/api/v1/apps/tourism/tickets",
            json={"session_id": later["session_id"], "holders": ["郑一"]},
            headers=me,
        )
    ).json()
    await client.post(f"/api/v1/payments/sandbox/orders/{purchase['order_id']}/pay", headers=me)
    ticket_id = purchase["tickets"][0]["ticket_id"]
    r = await client.post(f"/api/v1/apps/tourism/tickets/{ticket_id}/refund", headers=me)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "refunded"
    order = (await client.get(f"/api/v1/payments/orders/{purchase['order_id']}", headers=me)).json()
    assert order["state"] == "refunded" and order["refunded"] == 5000
    assert (await session(client, "2026-11-28"))["left"] == later["left"]
    again = await client.post(f"/api/v1/apps/tourism/tickets/{ticket_id}/refund", headers=me)
    assert again.status_code == 409
    # on the visit day itself it is too late (the rule: until the day before)
    tomorrow = await session(client, "2026-11-25")
    p2 = (
        await client.post(
            "/api/v1/apps/tourism/tickets",
            json={"session_id": tomorrow["session_id"], "holders": ["郑二"]},
            headers=me,
        )
    ).json()
    await client.post(f"/api/v1/payments/sandbox/orders/{p2['order_id']}/pay", headers=me)
    late = await client.post(
        f"/api/v1/apps/tourism/tickets/{p2['tickets'][0]['ticket_id']}/refund", headers=me
    )
    assert late.status_code == 409 and late.json()["code"] == "too_late_to_refund"


async def _me(client, me) -> str:
    return str((await client.get("/api/v1/me", headers=me)).json()["id"])


async def test_hotel_check_in_by_code_once(park):
    client, clock, _, desk, visitor = park
    me = await visitor()
    app_cred = await client.services.auth.machines.create("miniapp", app_id="tourism")
    hotel = {
        "Authorization": "Basic "
        + base64.b64encode(f"{app_cred['client_id']}:{app_cred['client_secret']}".encode()).decode()
    }
    code = (await client.post("/api/v1/miniapps/tourism/authorize", json={}, headers=me)).json()["code"]
    openid = (await client.post("/api/v1/miniapps/tourism/token", json={"code": code}, headers=hotel)).json()[
        "openid"
    ]
    nobooking = await enter(client, clock, desk, me)
    assert nobooking["reason"] == "no_reservation"
    night = (clock.now() + timedelta(hours=8)).date().isoformat()
    r = await client.post(
        "/api/v1/apps/tourism/hotel-bookings",
        headers=hotel,
        json={"hotel": "HT-ZHONGJIE", "openid": openid, "night": night, "guest_name": "王十一"},
    )
    assert r.status_code == 201, r.text
    # an openid another mini-app was given (or a made-up one) is not a guest of this one
    parking = await client.services.auth.pairwise.issue("parking", me_id := await _me(client, me))
    assert parking != openid and me_id
    for stranger in (parking, "o_madeup"):
        r = await client.post(
            "/api/v1/apps/tourism/hotel-bookings",
            headers=hotel,
            json={"hotel": "HT-ZHONGJIE", "openid": stranger, "night": night, "guest_name": "x"},
        )
        assert r.status_code == 422 and r.json()["code"] == "unknown_openid", r.text
    assert (
        await client.post(
            "/api/v1/apps/tourism/hotel-bookings",
            headers=me,
            json={"hotel": "HT-ZHONGJIE", "openid": openid, "night": night, "guest_name": "x"},
        )
    ).status_code == 401
    checked = await enter(client, clock, desk, me)
    assert checked["result"] == "allow" and checked["display"]["title"] == "入住成功"
    assert (await enter(client, clock, desk, me))["reason"] == "already_checked_in"


async def test_a_session_whose_window_is_over_is_neither_listed_sold_nor_admitted(park):
    client, clock, gate, _, visitor = park
    me = await visitor()
    morning = await session(client, "2026-11-25")  # the earliest window today, open at 09:00
    bought = await client.post(
        "/api/v1/apps/tourism/tickets",
        json={"session_id": morning["session_id"], "holders": ["冯一"]},
        headers=me,
    )
    assert bought.status_code == 201, bought.text
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{bought.json()['order_id']}/pay", headers=me)
    assert paid.json()["state"] == "paid"

    # the window closes: China time at its end, plus a minute
    end = morning["window"].split("-")[1]
    closes = datetime.fromisoformat(f"2026-11-25T{end}:00+08:00")
    clock.advance((closes - clock.now()).total_seconds() + 60)
    listed = (
        await client.get("/api/v1/apps/tourism/sessions", params={"attraction": "A-MUKDEN", "limit": 100})
    ).json()["items"]
    assert morning["session_id"] not in {s["session_id"] for s in listed}
    assert all(s["day"] >= "2026-11-25" for s in listed)
    late = await client.post(
        "/api/v1/apps/tourism/tickets",
        json={"session_id": morning["session_id"], "holders": ["冯二"]},
        headers=await visitor(),
    )
    assert late.status_code == 409 and late.json()["code"] == "session_over"
    at_gate = await enter(client, clock, gate, me)
    assert at_gate["result"] == "deny" and at_gate["reason"] == "session_over"
    assert at_gate["display"]["title"] == "场次已结束"


async def test_sessions_and_tickets_page_to_the_end(park, walk_pages):
    from miniapps.tourism.tables import TicketSession

    client, _, _, _, visitor = park
    sessions = await walk_pages(client, "/api/v1/apps/tourism/sessions", limit=5)
    assert len(sessions) == len({s["session_id"] for s in sessions}) == await TicketSession.count()
    assert [(s["day"], s["window"]) for s in sessions] == sorted((s["day"], s["window"]) for s in sessions)
    me = await visitor()
    for s in sessions[:3]:
        r = await client.post(
            "/api/v1/apps/tourism/tickets",
            json={"session_id": s["session_id"], "holders": ["卫一", "卫二"]},
            headers=me,
        )
        assert r.status_code == 201, r.text
    tickets = await walk_pages(client, "/api/v1/apps/tourism/tickets", limit=4, headers=me)
    assert len({t["ticket_id"] for t in tickets}) == 6


@pytest.mark.storage
async def test_a_purchase_that_fails_half_way_leaves_the_places_unsold(park, monkeypatch):
    """The database gone (here: the payment centre failing) after the places were held: nothing stays
    sold without a ticket and an order."""
    from backend.errors import ServiceUnavailable
    from miniapps._payments import MiniAppPayments
    from miniapps.tourism.tables import Ticket, TicketSession

    client, _, _, _, visitor = park
    me = await visitor()
    today = await session(client, "2026-11-25")

    async def down(*args, **kwargs):
        raise ServiceUnavailable("the database is not answering", code="database_unavailable")

    monkeypatch.setattr(MiniAppPayments, "create_order", down)
    r = await client.post(
        "/api/v1/apps/tourism/tickets",
        json={"session_id": today["session_id"], "holders": ["钱七", "孙八"]},
        headers=me,
    )
    assert r.status_code == 503
    row = (
        await TicketSession.select(TicketSession.sold).where(TicketSession.id == today["session_id"]).first()
    )
    assert row["sold"] == 0
    assert await Ticket.count().run() == 0

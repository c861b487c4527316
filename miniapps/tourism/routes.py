"""Tourism routes under /api/v1/apps/tourism."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from piccolo.columns.combination import WhereRaw

from miniapps.contract import (
    DEFAULT_LIMIT,
    AppCaller,
    Conflict,
    InvalidInput,
    Limit,
    NotFound,
    Offset,
    Platform,
    app_backend,
    citizen_caller,
    names,
    page,
)
from miniapps.tourism.rules import china_date, party_amount, refundable, service_day, session_over
from miniapps.tourism.services import refunded, settled
from miniapps.tourism.tables import Hotel, HotelBooking, Ticket, TicketSession

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class Purchase(msgspec.Struct, forbid_unknown_fields=True):
    session_id: str
    holders: Annotated[list[Name], msgspec.Meta(min_length=1, max_length=5)]  # the buyer and companions


class BookingCreate(msgspec.Struct, forbid_unknown_fields=True):
    hotel: Annotated[str, msgspec.Meta(max_length=16)]
    openid: Annotated[str, msgspec.Meta(max_length=40)]
    night: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    guest_name: Name


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("not found") from None


def handlers(platform: Platform) -> list[Any]:
    """The routes, answering with ``platform`` (the one tourism's app was given)."""

    @get(
        "/sessions",
        summary="Timed ticket sessions still open, soonest first, with places left; names in the request's "
        "language",
    )
    async def sessions(
        request: Request[Any, Any, Any],
        attraction: FromQuery[str | None] = None,
        day: FromQuery[date | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        now = platform.now()
        today = service_day(now)
        todays = await TicketSession.select(TicketSession.id, TicketSession.window).where(
            TicketSession.day == today
        )
        closed = [r["id"] for r in todays if session_over(today, r["window"], now)]
        query = TicketSession.select(
            TicketSession.all_columns(),  # type: ignore[arg-type]
            TicketSession.attraction.code,
            TicketSession.attraction.name,
            TicketSession.attraction.name_en,
            TicketSession.attraction.price,
        )
        if attraction:
            query = query.where(TicketSession.attraction.code == attraction)
        if day:
            query = query.where(TicketSession.day == day.isoformat())
        query = query.where(TicketSession.day >= today)
        if closed:
            query = query.where(TicketSession.id.not_in(closed))
        rows = await (
            query.order_by(TicketSession.day, TicketSession.window)
            .order_by(TicketSession.attraction.code)
            .order_by(TicketSession.id)
            .limit(limit + 1)
            .offset(offset)
        )
        return page(
            request,
            [
                {
                    "session_id": str(r["id"]),
                    "attraction": r["attraction.code"],
                    **names(r["attraction.name"], r["attraction.name_en"]),
                    "price": r["attraction.price"],
                    "day": r["day"],
                    "window": r["window"],
                    "left": r["capacity"] - r["sold"],
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @post("/tickets", guards=[citizen_caller], summary="Buy tickets for oneself and companions (one order)")
    async def buy(data: JSONBody[Purchase], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        session_id = _uuid(data.session_id)
        row = (
            await TicketSession.select(
                TicketSession.id,
                TicketSession.day,
                TicketSession.window,
                TicketSession.attraction.name,
                TicketSession.attraction.price,
            )
            .where(TicketSession.id == session_id)
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such session", code="session_not_found")
        if session_over(row["day"], row["window"], platform.now()):
            raise Conflict(
                f"the {row['day']} {row['window']} session is over; choose a later one", code="session_over"
            )
        n = len(data.holders)
        # the places, the order and the tickets together, or none of them (a failure half-way used to
        # keep the places sold with no ticket and no order)
        async with platform.transaction():
            held = (
                await TicketSession.update({TicketSession.sold: TicketSession.sold + n})
                .where((TicketSession.id == session_id) & WhereRaw("sold + {} <= capacity", n))
                .returning(TicketSession.id)
                .run()
            )
            if not held:
                raise Conflict("not enough places left in this session", code="sold_out")
            purchase = uuid.uuid4()
            order = await platform.payments.create_order(
                openid=caller.openid,
                reference=f"tickets-{purchase}",
                amount=party_amount(row["attraction.price"], n),
                description=f"{row['attraction.name']} 门票 x{n}",  # the merchant's own words, Chinese
            )
            tickets = [
                Ticket(
                    id=uuid.uuid4(),
                    session=session_id,
                    openid=caller.openid,
                    holder_name=name,
                    order_id=order["order_id"],
                )
                for name in data.holders
            ]
            await Ticket.insert(*tickets).run()
        return {
            "order_id": order["order_id"],
            "amount": order["amount"],
            "tickets": [{"ticket_id": str(t.id), "holder": t.holder_name} for t in tickets],
        }

    @get("/tickets", guards=[citizen_caller], summary="The caller's tickets, soonest visit first")
    async def mine(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = (
            await Ticket.select(
                Ticket.all_columns(),  # type: ignore[arg-type]
                Ticket.session.day,
                Ticket.session.window,
                Ticket.session.attraction.code,  # type: ignore[union-attr]
                Ticket.session.attraction.name,  # type: ignore[union-attr]
                Ticket.session.attraction.name_en,  # type: ignore[union-attr]
            )
            .where(Ticket.openid == caller.openid)
            .order_by(Ticket.session.day, Ticket.session.window)
            .order_by(Ticket.created_at)
            .order_by(Ticket.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        for order_id in {r["order_id"] for r in rows if r["state"] == "pending"}:
            if (await platform.payments.order(order_id))["state"] == "paid":
                await settled(platform, order_id)
                for r in rows:
                    if r["order_id"] == order_id and r["state"] == "pending":
                        r["state"] = "paid"
        return page(
            request,
            [
                {
                    "ticket_id": str(r["id"]),
                    "holder": r["holder_name"],
                    "state": r["state"],
                    "day": r["session.day"],
                    "window": r["session.window"],
                    "attraction": r["session.attraction.code"],
                    **names(r["session.attraction.name"], r["session.attraction.name_en"]),
                    "order_id": r["order_id"],
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @post(
        "/tickets/{ticket_id:str}/refund",
        guards=[citizen_caller],
        summary="Refund a paid ticket before its visit day (by the attraction's rule)",
    )
    async def refund(ticket_id: FromPath[str], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        row = (
            await Ticket.select(
                Ticket.all_columns(),  # type: ignore[arg-type]
                Ticket.session.day,
                Ticket.session.attraction.price,  # type: ignore[union-attr]
                Ticket.session.attraction.refund_days,  # type: ignore[union-attr]
            )
            .where((Ticket.id == _uuid(ticket_id)) & (Ticket.openid == caller.openid))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such ticket", code="ticket_not_found")
        if row["state"] == "pending" and (await platform.payments.order(row["order_id"]))["state"] == "paid":
            await settled(platform, row["order_id"])
            row["state"] = "paid"
        if row["state"] != "paid":
            raise Conflict(f"a {row['state']} ticket cannot be refunded", code="not_refundable")
        if not refundable(
            china_date(platform.now()), row["session.day"], row["session.attraction.refund_days"]
        ):
            raise Conflict("refunds close the day before the visit", code="too_late_to_refund")
        taken = (
            await Ticket.update({Ticket.state: "refunded"})
            .where((Ticket.id == row["id"]) & (Ticket.state == "paid"))
            .returning(Ticket.id)
            .run()
        )
        if not taken:
            raise Conflict("this ticket was used or refunded meanwhile", code="not_refundable")
        await (
            TicketSession.update({TicketSession.sold: TicketSession.sold - 1})
            .where((TicketSession.id == row["session"]) & (TicketSession.sold > 0))
            .run()
        )
        await refunded(platform, row["order_id"])
        result = await platform.payments.refund(
            row["order_id"],
            reference=f"ticket-{row['id']}",
            amount=row["session.attraction.price"],
            reason="游客退票",
        )
        if row["session.day"] == service_day(platform.now()):  # a ticket for today (refunds on the day)
            await platform.entitlement_changed(caller.openid)
        return {"ticket_id": ticket_id, "state": "refunded", "refund": result}

    @post("/hotel-bookings", guards=[app_backend], summary="A hotel registers a booking for check-in by code")
    async def book_hotel(data: JSONBody[BookingCreate]) -> dict[str, Any]:
        hotel = await Hotel.select(Hotel.id).where(Hotel.code == data.hotel).first().run()  # type: ignore[attr-defined]
        if hotel is None:
            raise NotFound("no such hotel", code="hotel_not_found")
        if not await platform.knows(data.openid):  # an id another mini-app was given is not a guest
            raise InvalidInput("unknown openid for this mini-app", code="unknown_openid")
        booking_id = uuid.uuid4()
        await HotelBooking.insert(
            HotelBooking(
                id=booking_id,
                hotel=hotel["id"],
                openid=data.openid,
                night=data.night,
                guest_name=data.guest_name,
            )
        ).run()
        return {"booking_id": str(booking_id), "state": "booked"}

    return [sessions, buy, mine, refund, book_hotel]

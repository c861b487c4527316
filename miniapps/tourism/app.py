"""Tickets and gates.

- Buying reserves places in a timed session with one conditional UPDATE (the last ticket goes to one
  buyer), then creates one order for the party through the payment centre; tickets become valid when it
  is paid (the payment event, or the gate's own look at the order, whichever comes first).
- Timed sessions: a session's window (``09:00-12:00``, China time) closes at its end; from then on it is
  neither listed nor sold (``session_over``) and its tickets no longer admit anyone.
- 一码入园: the gate (context ``tourism-gate``, place = attraction code) finds the scanned citizen's paid,
  unused ticket for a session of today at this attraction whose window has not closed (the earliest
  first) and admits one person per scan; when all are used, a further scan is refused ``already_used``;
  with only tickets of a closed window, ``session_over``; without any, ``no_ticket``.
- Refunds: a paid ticket is refundable until ``refund_days`` (1) days before its visit day; the place is
  released.
- Hotels (context ``hotel-checkin``, place = hotel code): the citizen's booking for tonight is checked in
  once ("30-second check-in"); again: ``already_checked_in``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from miniapps.contract import Display, Manifest, MiniApp, PaymentEvent, ScanDecision, ScanEvent
from miniapps.tourism.demo import SCANNERS as DEMO_SCANNERS
from miniapps.tourism.tables import Attraction, HotelBooking, Ticket

CHINA = timezone(timedelta(hours=8))
PAID_STATES = ("paid", "partially_refunded", "refunded")


def window_closes(day: str, window: str) -> datetime:
    """When a timed session's entry window ends: ``("2026-11-25", "09:00-12:00")`` → 12:00 China time."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(window.rpartition("-")[2]), CHINA)


def session_over(day: str, window: str, now: datetime) -> bool:
    return now >= window_closes(day, window)


class TourismApp(MiniApp):
    piccolo_app = "miniapps.tourism.piccolo_app"  # its tables and migrations
    demo_scanners = DEMO_SCANNERS
    manifest = Manifest(
        id="tourism",
        name_zh="好游玩",
        name_en="Tourism",
        version="1.0.0",
        description="Timed tickets, entry by citizen code, hotel check-in by code.",
        description_zh="分时段购票，刷市民码入园，刷码办理酒店入住。",
        scopes=["openid", "profile"],
        entitlements=["tickets"],
        scan_contexts={"tourism-gate": None, "hotel-checkin": None},
    )

    def route_handlers(self) -> list[Any]:
        from miniapps.tourism.routes import handlers

        return handlers(self)

    def seed_demo(self) -> Any:
        from miniapps.tourism.demo import seed

        return seed(self.platform.now())

    async def settle(self, order_id: str) -> None:
        """Tickets of a paid order become valid (idempotent)."""
        await (
            Ticket.update({Ticket.state: "paid"})
            .where((Ticket.order_id == order_id) & (Ticket.state == "pending"))
            .run()
        )

    async def on_payment_event(self, event: PaymentEvent) -> None:
        if event.type == "order.paid":
            await self.settle(event.order_id)

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        today = scan.scanned_at.astimezone(CHINA).date().isoformat()
        if scan.scanner.context == "hotel-checkin":
            return await self._hotel(scan, today)
        attraction = await Attraction.select().where(Attraction.code == scan.scanner.place).first().run()
        if attraction is None:
            return ScanDecision(allow=False, reason="unknown_attraction")
        tickets = (
            await Ticket.select(
                Ticket.id, Ticket.state, Ticket.order_id, Ticket.holder_name, Ticket.session.window
            )
            .where(
                (Ticket.openid == scan.openid)
                & (Ticket.session.attraction == attraction["id"])
                & (Ticket.session.day == today)
            )
            .order_by(Ticket.session.window)
            .order_by(Ticket.created_at)
            .run()
        )
        for order_id in {t["order_id"] for t in tickets if t["state"] == "pending"}:
            order = await self.platform.payments.order(order_id)  # the payment event may still be on its way
            if order["state"] in PAID_STATES:
                await self.settle(order_id)
                for t in tickets:
                    if t["order_id"] == order_id and t["state"] == "pending":
                        t["state"] = "paid"
        closed = [t for t in tickets if session_over(today, t["session.window"], scan.scanned_at)]
        tickets = [t for t in tickets if t not in closed]
        for t in tickets:
            if t["state"] == "paid":
                used = (
                    await Ticket.update({Ticket.state: "used", Ticket.used_at: scan.scanned_at})
                    .where((Ticket.id == t["id"]) & (Ticket.state == "paid"))
                    .returning(Ticket.id)
                    .run()
                )
                if used:
                    left = sum(1 for x in tickets if x["state"] == "paid") - 1
                    return ScanDecision(
                        allow=True,
                        display=Display(title=scan.text("欢迎入园", "Welcome"), subtitle=t["holder_name"]),
                        data={"ticket_id": str(t["id"]), "holder": t["holder_name"], "left": left},
                    )
        if any(t["state"] == "used" for t in tickets):
            return ScanDecision(
                allow=False,
                reason="already_used",
                display=Display(title=scan.text("门票已使用", "Ticket already used"), color="red"),
            )
        if any(t["state"] == "paid" for t in closed):
            return ScanDecision(
                allow=False,
                reason="session_over",
                display=Display(
                    title=scan.text("场次已结束", "Session over"),
                    subtitle=scan.text("入园时段已过", "The entry window has closed"),
                    color="red",
                ),
            )
        return ScanDecision(
            allow=False,
            reason="no_ticket",
            display=Display(title=scan.text("未找到今日门票", "No ticket for today"), color="red"),
        )

    async def _hotel(self, scan: ScanEvent, today: str) -> ScanDecision:
        booking = (
            await HotelBooking.select()
            .where(
                (HotelBooking.openid == scan.openid)
                & (HotelBooking.hotel.code == scan.scanner.place)
                & (HotelBooking.night == today)
            )
            .first()
            .run()
        )
        if booking is None:
            return ScanDecision(
                allow=False,
                reason="no_reservation",
                display=Display(title=scan.text("未找到预订", "No booking found"), color="red"),
            )
        done = (
            await HotelBooking.update(
                {HotelBooking.state: "checked_in", HotelBooking.checked_in_at: scan.scanned_at}
            )
            .where((HotelBooking.id == booking["id"]) & (HotelBooking.state == "booked"))
            .returning(HotelBooking.id)
            .run()
        )
        if not done:
            return ScanDecision(
                allow=False,
                reason="already_checked_in",
                display=Display(title=scan.text("已入住", "Already checked in"), color="red"),
            )
        return ScanDecision(
            allow=True,
            display=Display(title=scan.text("入住成功", "Checked in"), subtitle=booking["guest_name"]),
            data={"booking_id": str(booking["id"])},
        )

"""好游玩 tourism: tickets, gates and hotel check-in by scan.

The rules (timed sessions, which ticket a gate uses and why it refuses, refunds) are stated and
computed in :mod:`miniapps.tourism.rules`; this module keeps tickets and bookings in the database:

- Buying reserves places in a timed session with one conditional UPDATE (the last ticket goes to one
  buyer), then creates one order for the party through the payment centre; tickets become valid when it
  is paid (the payment event, or the gate's own look at the order, whichever comes first).
- 一码入园: the gate (context ``tourism-gate``, place = attraction code) uses the scanned citizen's paid,
  unused tickets of today at this attraction, one person per scan.
- Refunds release the place.
- A paid order's buyer who subscribed is reminded of the session an hour before it opens; refunding the
  order's last ticket withdraws the reminder.
- The code's tickets entitlement (``contributes=["tickets"]``, :meth:`TourismApp.entitlement`): granted
  while the citizen holds a paid, unused, unrefunded ticket for today (China time), until the next
  midnight; the platform is told (``entitlement_changed``) when a ticket for today is paid, refunded or
  its holder's last one used.
- Hotels (context ``hotel-checkin``, place = hotel code): the citizen's booking for tonight is checked in
  once ("30-second check-in"); again: ``already_checked_in``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from miniapps.contract import (
    Contribution,
    Display,
    Manifest,
    MessageTemplate,
    MiniApp,
    PaymentEvent,
    Rateable,
    ScanDecision,
    ScanEvent,
)
from miniapps.tourism import demo, routes
from miniapps.tourism.rules import gate_refusal, next_midnight, order_paid, service_day, session_over
from miniapps.tourism.services import settled
from miniapps.tourism.tables import Attraction, HotelBooking, Ticket


class TourismApp(MiniApp):
    piccolo_app = "miniapps.tourism.piccolo_app"  # its tables and migrations
    demo_scanners = demo.SCANNERS
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
        rateable={
            "visit": Rateable(
                name_zh="景区游览",
                name_en="Visit to an attraction",
                channel="onsite",
                description="凭票入园后可评价 / rated once the ticket let the visitor in",
            )
        },
        contributes=["tickets"],
        templates={
            "session_reminder": MessageTemplate(
                category="reminder",
                title_zh="入园时段提醒",
                title_en="Your entry session",
                body_zh="您购买的{attraction}门票 {window} 场次将于 {opens_at} 开始入园，刷市民码即可入园。",
                body_en="Entry to {attraction_en} for your {window} session opens at {opens_at}: show your"
                " citizen code at the gate.",
                placeholders={
                    "attraction": "text",
                    "attraction_en": "text",
                    "window": "text",
                    "opens_at": "datetime",
                },
                description="场次开始前 1 小时发送（已付款的订单；全部退票即撤回）/ sent an hour before a"
                " paid order's timed session opens, withdrawn when its tickets are all refunded",
            )
        },
    )

    def route_handlers(self) -> list[Any]:
        return routes.handlers(self.platform)

    def seed_demo(self) -> Any:
        return demo.seed(self.platform.now())

    async def on_payment_event(self, event: PaymentEvent) -> None:
        if event.type == "order.paid":
            await settled(self.platform, event.order_id)

    async def entitlement(self, openid: str, name: str, at: datetime) -> Contribution:
        """``tickets``: a paid ticket (unused, unrefunded) for ``at``'s day, China time, held until the
        next midnight (a ticket bought for tomorrow counts from then: the answer is not kept past it)."""
        held = (
            await Ticket.select(Ticket.id)
            .where(
                (Ticket.openid == openid) & (Ticket.state == "paid") & (Ticket.session.day == service_day(at))
            )
            .first()
            .run()
        )
        until = next_midnight(at)
        if held is None:
            return Contribution(granted=False, until=until, reason="no_ticket_today")
        return Contribution(granted=True, until=until)

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        today = service_day(scan.scanned_at)
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
            if order_paid(order["state"]):
                await settled(self.platform, order_id)
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
                    await self.platform.rateable(
                        scan.openid, "visit", key=f"ticket:{t['id']}", at=scan.scanned_at
                    )
                    left = sum(1 for x in tickets if x["state"] == "paid") - 1
                    if left + sum(1 for x in closed if x["state"] == "paid") == 0:
                        await self.platform.entitlement_changed(scan.openid)  # the last ticket of today
                    return ScanDecision(
                        allow=True,
                        display=Display(title=scan.text("欢迎入园", "Welcome"), subtitle=t["holder_name"]),
                        data={"ticket_id": str(t["id"]), "holder": t["holder_name"], "left": left},
                    )
        reason = gate_refusal([t["state"] for t in tickets], [t["state"] for t in closed])
        if reason == "already_used":
            return ScanDecision(
                allow=False,
                reason="already_used",
                display=Display(title=scan.text("门票已使用", "Ticket already used"), color="red"),
            )
        if reason == "session_over":
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

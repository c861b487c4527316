"""Appointments, check-in by code, bills split by the insurance rule, pay after the visit, ratings.

- Check-in (scanner context ``hospital-checkin``, place = hospital code) needs the medical-insurance
  entitlement (the platform checks the code). Today's booked appointment at this hospital is checked in;
  without one the citizen is admitted as a walk-in (the visit opens, the display sends them to the
  registration desk).
- 先看病后付费: a citizen with a bill of this hospital unpaid for more than ``credit_days`` (7) is refused
  at check-in (``unpaid_bills``) until it is paid.
- The bill (posted by the hospital's backend) lists items ``{name, amount, covered}``; insurance pays
  ``local_rate`` (70 %) of covered items for citizens insured in the hospital's province and
  ``other_rate`` (50 %) for others, rounded down to the fen per item; the citizen's share is a deferred
  order. The split and the other rules are computed in :mod:`miniapps.hospital.rules`.
- A visit can be rated once, when its bill is posted, in the platform's evaluation centre (好差评), each
  hospital the unit that answers for it. Ratings the hospital kept itself before (good / average / bad)
  moved there at start-up (``OLD_RATINGS``).
- Messages: a reminder of an appointment the evening before (to a citizen who subscribed; withdrawn if
  the appointment is cancelled), and the bill when it is posted with a share to pay.
- The medical insurance card (医保电子凭证): a citizen links it once, standing, through the platform's
  consent sharing (:class:`miniapps.hospital.services.InsuranceCards`); each bill reads it and says which
  card it settled against. Without a card a bill is what it was.
"""

from __future__ import annotations

import uuid
from typing import Any

from miniapps.contract import (
    Display,
    Manifest,
    MessageTemplate,
    MiniApp,
    PastRating,
    PaymentEvent,
    Platform,
    Rateable,
    RatingUnit,
    ScanDecision,
    ScanEvent,
)
from miniapps.hospital import demo, routes
from miniapps.hospital.rules import (
    OLD_RATINGS,
    china_day,
    clock_time,
    credit_cutoff,
    order_paid,
    unit_code,
)
from miniapps.hospital.rules import split_bill as split_bill  # the bill's split, where it used to live
from miniapps.hospital.services import InsuranceCards
from miniapps.hospital.tables import Appointment, Hospital, Visit


class HospitalApp(MiniApp):
    piccolo_app = "miniapps.hospital.piccolo_app"  # its tables and migrations
    demo_scanners = demo.SCANNERS
    manifest = Manifest(
        id="hospital",
        name_zh="好就医",
        name_en="Hospital",
        version="1.0.0",
        description="Book a doctor, check in by code, see the doctor first and pay later.",
        description_zh="预约挂号，刷市民码签到，先看病后付费。",
        scopes=["openid", "profile"],
        entitlements=["medical"],
        scan_contexts={"hospital-checkin": "medical"},
        settings_schema={
            "credit_days": {"type": "integer", "default": 7},
            "local_rate_bp": {"type": "integer", "default": 7000},
            "other_rate_bp": {"type": "integer", "default": 5000},
        },
        rateable={
            "visit": Rateable(
                name_zh="就医服务",
                name_en="Hospital visit",
                channel="onsite",
                description="就诊结束、医院出具账单后可评价 / rated once the visit is billed",
            )
        },
        templates={
            "appointment_reminder": MessageTemplate(
                category="reminder",
                title_zh="就诊提醒",
                title_en="Your appointment",
                body_zh="您预约了{hospital}{department}{doctor}的号，就诊时间 {starts_at}，"
                "请按时到院刷市民码签到。",
                body_en="Your appointment with {doctor} ({department_en}, {hospital_en}) is at {starts_at}:"
                " check in with your citizen code when you arrive.",
                placeholders={
                    "hospital": "text",
                    "hospital_en": "text",
                    "department": "text",
                    "department_en": "text",
                    "doctor": "text",
                    "starts_at": "datetime",
                },
                description="就诊前一天 18:00 发送（之后预约的立即发送；取消预约即撤回）/ sent at 18:00"
                " China time the day before an appointment (at once when booked later), withdrawn if"
                " it is cancelled",
            ),
            "bill_ready": MessageTemplate(
                category="transactional",
                title_zh="就诊账单待支付",
                title_en="Your hospital bill",
                body_zh="{hospital}本次就诊共 {total}，医保支付 {insured}，个人自付 {self_paid}，"
                "请于 {pay_by} 前支付。",
                body_en="Your visit to {hospital_en}: {total} in all, {insured} paid by medical insurance,"
                " {self_paid} for you to pay by {pay_by}.",
                placeholders={
                    "hospital": "text",
                    "hospital_en": "text",
                    "total": "amount",
                    "insured": "amount",
                    "self_paid": "amount",
                    "pay_by": "datetime",
                },
                link="/wallet#orders",
                description="医院出具账单、生成自付订单时发送 / sent when the hospital posts a bill with"
                " a share for the citizen to pay",
            ),
        },
    )

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.cards = InsuranceCards(platform)

    def route_handlers(self) -> list[Any]:
        return routes.handlers(self.platform, self.cards)

    def seed_demo(self) -> Any:
        return self._seed()

    async def _seed(self) -> list[str]:
        done = await demo.seed(self.platform.now())
        await self._units()
        return done

    async def startup(self) -> None:
        await self._units()
        await self._move_ratings()

    async def _units(self) -> None:
        """Each hospital answers for its visits' ratings."""
        rows = await Hospital.select(Hospital.code, Hospital.name, Hospital.name_en).run()
        await self.platform.save_units(
            [
                RatingUnit(code=unit_code(h["code"]), name_zh=h["name"], name_en=h["name_en"] or h["code"])
                for h in rows
            ]
        )

    async def _move_ratings(self) -> None:
        """Ratings kept here before the evaluation centre move there once, in batches; each visit's is
        then cleared here (two workers starting at once move each one once: the centre's key)."""
        while True:
            rows = (
                await Visit.select(
                    Visit.id,
                    Visit.openid,
                    Visit.started_at,
                    Visit.billed_at,
                    Visit.rating,
                    Visit.rating_comment,
                    Visit.hospital.code,
                )
                .where(Visit.rating != "")
                .limit(500)
                .run()
            )
            if not rows:
                return
            async with self.platform.transaction():
                await self.platform.import_ratings(
                    "visit",
                    [
                        PastRating(
                            openid=v["openid"],
                            key=f"visit:{v['id']}",
                            occurred_at=v["started_at"],
                            rated_at=v["billed_at"] or v["started_at"],
                            level=OLD_RATINGS.get(v["rating"], 3),
                            comment=v["rating_comment"],
                            unit=unit_code(v["hospital.code"]),
                        )
                        for v in rows
                    ],
                )
                await (
                    Visit.update({Visit.rating: "", Visit.rating_comment: ""})
                    .where(Visit.id.is_in([v["id"] for v in rows]))
                    .run()
                )

    async def unpaid_overdue(self, openid: str) -> int:
        limit = credit_cutoff(self.platform.now(), self.platform.config["credit_days"])
        overdue = (
            await Visit.select(Visit.id, Visit.order_id)
            .where((Visit.openid == openid) & (Visit.state == "billed") & (Visit.billed_at < limit))
            .run()
        )
        count = 0
        for v in overdue:
            order = await self.platform.payments.order(v["order_id"])
            if order_paid(order["state"]):
                await Visit.update({Visit.state: "paid"}).where(Visit.id == v["id"]).run()
            else:
                count += 1
        return count

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        key = f"{scan.scanner.client_id}/{scan.record_id}"
        hospital = await Hospital.select().where(Hospital.code == scan.scanner.place).first().run()
        if hospital is None:
            return ScanDecision(allow=False, reason="unknown_hospital")
        if await self.unpaid_overdue(scan.openid):
            return ScanDecision(
                allow=False,
                reason="unpaid_bills",
                display=Display(
                    title=scan.text("请先支付上次就诊费用", "Please pay your last bill first"),
                    subtitle=scan.text("有未付账单", "Unpaid bill"),
                    color="red",
                ),
            )
        start, end = china_day(scan.scanned_at)
        appointment = (
            await Appointment.select(Appointment.id, Appointment.slot.starts_at)
            .where(
                (Appointment.openid == scan.openid)
                & (Appointment.state == "booked")
                & (Appointment.slot.doctor.department.hospital == hospital["id"])  # type: ignore[union-attr]
                & (Appointment.slot.starts_at >= start)
                & (Appointment.slot.starts_at < end)
            )
            .order_by(Appointment.slot.starts_at)
            .first()
            .run()
        )
        region = (scan.entitlements.get("medical") or {}).get("region") or ""
        visit_id = uuid.uuid4()
        if appointment is not None:
            await (
                Appointment.update({Appointment.state: "checked_in"})
                .where(Appointment.id == appointment["id"])
                .run()
            )
        await Visit.insert(
            Visit(
                id=visit_id,
                hospital=hospital["id"],
                openid=scan.openid,
                appointment=appointment["id"] if appointment else None,
                walk_in="n" if appointment else "y",
                insured_region=region,
                started_at=scan.scanned_at,
                check_in_record=key,
            )
        ).run()
        if appointment is None:  # the stated walk-in outcome: admitted, sent to registration
            return ScanDecision(
                allow=True,
                reason="ok",
                data={"visit_id": str(visit_id), "walk_in": True, "day": start.date().isoformat()},
                display=Display(
                    title=scan.text("请到挂号窗口登记", "Please register at the desk"),
                    subtitle=scan.text("今日无预约", "No appointment today"),
                    color="yellow",
                ),
            )
        time = clock_time(appointment["slot.starts_at"])
        return ScanDecision(
            allow=True,
            data={"visit_id": str(visit_id), "walk_in": False},
            display=Display(
                title=scan.text("签到成功", "Checked in"),
                subtitle=scan.text(f"{time} 就诊", f"Appointment at {time}"),
            ),
        )

    async def on_payment_event(self, event: PaymentEvent) -> None:
        if event.type == "order.paid" and event.reference.startswith("visit-"):
            await Visit.update({Visit.state: "paid"}).where(Visit.order_id == event.order_id).run()

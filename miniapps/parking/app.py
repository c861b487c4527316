"""好停车 parking: entries and exits by scan, spaces counted by conditional UPDATEs.

The rules (free spaces, the reservation's grace, the fee) are stated and computed in
:mod:`miniapps.parking.rules`; reservations are kept by :mod:`miniapps.parking.services`.

- Spaces: free = capacity - occupied - reserved, changed only by single conditional UPDATEs, so
  concurrent entries at the last space admit exactly one and counts never leave [0, capacity].
- Entry (barrier scan, licence plate from the camera in the scan's ``meta.plate``): uses the citizen's
  reservation here if any (and withdraws its lapse reminder), else a free space, else refused
  ``car_park_full``.
- Exit: the barrier opens at once; the fee is a deferred order ("leave first, pay after").
- Plates: a citizen registers their plates, each checked against their vehicle licence (机动车行驶证)
  with their consent (:class:`miniapps.parking.services.Plates`); the entry says whether the camera's
  plate is one of the citizen's verified plates (``data.plate_verified``). It decides nothing.
"""

from __future__ import annotations

from typing import Any

from piccolo.columns.combination import WhereRaw

from miniapps.contract import (
    Display,
    Gauge,
    Manifest,
    MessageTemplate,
    MiniApp,
    Platform,
    Rateable,
    ScanDecision,
    ScanEvent,
)
from miniapps.parking import demo, routes
from miniapps.parking.rules import free_spaces, parking_fee, plate, yuan
from miniapps.parking.services import Plates, Reservations, reminder_key
from miniapps.parking.tables import CarPark, ParkingSession, Reservation

__all__ = ["ParkingApp", "parking_fee"]  # the tariff, where it used to live


class ParkingApp(MiniApp):
    piccolo_app = "miniapps.parking.piccolo_app"  # its tables and migrations
    demo_scanners = demo.SCANNERS
    manifest = Manifest(
        id="parking",
        name_zh="好停车",
        name_en="Parking",
        version="1.0.0",
        description="Find a space, reserve it, enter and leave by citizen code, pay after leaving.",
        description_zh="查找并预约车位，刷市民码进出停车场，离场后再付费。",
        scopes=["openid"],
        scan_contexts={"parking-entry": None, "parking-exit": None},
        rateable={
            "stay": Rateable(
                name_zh="停车服务",
                name_en="Parking",
                channel="onsite",
                description="驶出停车场时可评价 / rated once the car has left",
            )
        },
        settings_schema={"grace_minutes": {"type": "integer", "default": 30}},
        templates={
            "reservation_lapsing": MessageTemplate(
                category="reminder",
                title_zh="车位预约即将失效",
                title_en="Your reserved space lapses soon",
                body_zh="您在{car_park}预约的车位将于 {expires_at} 失效，请在此之前入场。",
                body_en="The space you reserved at {car_park_en} lapses at {expires_at}: please arrive before"
                " then.",
                placeholders={"car_park": "text", "car_park_en": "text", "expires_at": "datetime"},
                description="预约失效前 10 分钟发送（入场或取消预约即撤回）/ sent 10 minutes before a"
                " reservation lapses (withdrawn when the car enters or the reservation is cancelled)",
            )
        },
    )

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.reservations = Reservations(platform)
        self.plates = Plates(platform)

    def route_handlers(self) -> list[Any]:
        return routes.handlers(self.reservations, self.plates)

    def seed_demo(self) -> Any:
        return demo.seed()

    async def gauges(self) -> list[Gauge]:
        """Free spaces per car park, for the operators' dashboard: each label in one language (a car
        park without an English name is named by its code on the English screen)."""
        rows = await CarPark.select(
            CarPark.code, CarPark.name, CarPark.name_en, CarPark.capacity, CarPark.occupied, CarPark.reserved
        ).order_by(CarPark.code)
        return [
            Gauge(
                name=f"free_spaces:{r['code']}",
                label_zh=f"{r['name']} 空余车位",
                label_en=f"{r['name_en'] or r['code']}: free spaces",
                value=free_spaces(r["capacity"], r["occupied"], r["reserved"]),
                of=r["capacity"],
            )
            for r in rows
        ]

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        key = f"{scan.scanner.client_id}/{scan.record_id}"
        park = await CarPark.select().where(CarPark.code == scan.scanner.place).first().run()
        if park is None:
            return ScanDecision(allow=False, reason="unknown_car_park")
        if scan.scanner.context == "parking-entry":
            return await self._enter(scan, park, key)
        return await self._leave(scan, park, key)

    async def _enter(self, scan: ScanEvent, park: dict[str, Any], key: str) -> ScanDecision:
        if await ParkingSession.exists().where(ParkingSession.entry_record == key).run():
            return ScanDecision(allow=True, display=self._welcome(scan, park))
        if (
            await ParkingSession.exists()
            .where(
                (ParkingSession.openid == scan.openid)
                & (ParkingSession.car_park == park["id"])
                & (ParkingSession.state == "open")
            )
            .run()
        ):
            return ScanDecision(
                allow=False,
                reason="already_inside",
                display=Display(title=scan.text("车辆已在场内", "Car already inside"), color="red"),
            )
        await self.reservations.expire()
        booking = (
            await Reservation.select(Reservation.id)
            .where(
                (Reservation.openid == scan.openid)
                & (Reservation.car_park == park["id"])
                & (Reservation.state == "active")
            )
            .first()
            .run()
        )
        if booking is not None:
            used = (
                await Reservation.update({Reservation.state: "used"})
                .where((Reservation.id == booking["id"]) & (Reservation.state == "active"))
                .returning(Reservation.id)
                .run()
            )
            moved = (
                used
                and await CarPark.update(
                    {CarPark.reserved: CarPark.reserved - 1, CarPark.occupied: CarPark.occupied + 1}
                )
                .where((CarPark.id == park["id"]) & (CarPark.reserved > 0))  # type: ignore[attr-defined]
                .returning(CarPark.id)  # type: ignore[attr-defined]
                .run()
            )
            admitted = bool(moved)
            if admitted:  # used: its reminder would tell of a lapse that will not come
                await self.platform.cancel_notice(reminder_key(str(booking["id"])))
        else:
            admitted = bool(
                await CarPark.update({CarPark.occupied: CarPark.occupied + 1})
                .where((CarPark.id == park["id"]) & WhereRaw("occupied + reserved < capacity"))  # type: ignore[attr-defined]
                .returning(CarPark.id)  # type: ignore[attr-defined]
                .run()
            )
        if not admitted:
            return ScanDecision(
                allow=False,
                reason="car_park_full",
                display=Display(title=scan.text("车位已满", "Car park full"), color="red"),
            )
        camera = scan.meta.get("plate", "")
        await ParkingSession.insert(
            ParkingSession(
                car_park=park["id"],
                openid=scan.openid,
                plate=camera,
                entry_at=scan.scanned_at,
                entry_record=key,
            )
        ).run()
        # the camera's plate is one the citizen verified against their vehicle licence: shown to the
        # barrier's operator, never a reason to refuse (a car without a registered plate enters as before)
        verified = bool(camera) and await self.plates.is_verified(scan.openid, plate(camera))
        return ScanDecision(
            allow=True,
            display=self._welcome(scan, park),
            data={"reserved": booking is not None, "plate_verified": verified},
        )

    @staticmethod
    def _welcome(scan: ScanEvent, park: dict[str, Any]) -> Display:
        # a car park without an English name: an English screen names its code, never Chinese
        return Display(
            title=scan.text("欢迎", "Welcome"),
            subtitle=scan.text(park["name"], park["name_en"] or park["code"]),
        )

    async def _leave(self, scan: ScanEvent, park: dict[str, Any], key: str) -> ScanDecision:
        session = await ParkingSession.select().where(ParkingSession.exit_record == key).first().run()
        if session is None:
            session = (
                await ParkingSession.select()
                .where(
                    (ParkingSession.openid == scan.openid)
                    & (ParkingSession.car_park == park["id"])
                    & (ParkingSession.state == "open")
                )
                .order_by(ParkingSession.entry_at, ascending=False)
                .first()
                .run()
            )
            if session is None:
                return ScanDecision(
                    allow=False,
                    reason="no_entry_record",
                    display=Display(
                        title=scan.text("无入场记录，请联系管理员", "No entry record: call the attendant"),
                        color="red",
                    ),
                )
            fee = parking_fee(
                session["entry_at"],
                scan.scanned_at,
                free_minutes=park["free_minutes"],
                hourly_rate=park["hourly_rate"],
                daily_max=park["daily_max"],
            )
            closed = (
                await ParkingSession.update(
                    {
                        ParkingSession.state: "closed",
                        ParkingSession.exit_at: scan.scanned_at,
                        ParkingSession.fee: fee,
                        ParkingSession.exit_record: key,
                    }
                )
                .where((ParkingSession.id == session["id"]) & (ParkingSession.state == "open"))
                .returning(ParkingSession.id)
                .run()
            )
            if closed:
                # the stay can be rated (好差评): the citizen is invited to, in their inbox
                await self.platform.rateable(
                    scan.openid, "stay", key=f"stay:{session['id']}", at=scan.scanned_at
                )
                await (
                    CarPark.update({CarPark.occupied: CarPark.occupied - 1})
                    .where((CarPark.id == park["id"]) & (CarPark.occupied > 0))  # type: ignore[attr-defined]
                    .run()
                )
                if fee > 0:  # leave first, pay after
                    order = await self.platform.payments.create_order(
                        openid=scan.openid,
                        reference=f"parking-{session['id']}",
                        amount=fee,
                        deferred=True,
                        description=f"{park['name']} 停车费",  # the merchant's own words, Chinese
                    )
                    await (
                        ParkingSession.update({ParkingSession.order_id: order["order_id"]})
                        .where(ParkingSession.id == session["id"])
                        .run()
                    )
            session = await ParkingSession.select().where(ParkingSession.id == session["id"]).first().run()
            assert session is not None
        return ScanDecision(
            allow=True,
            display=Display(
                title=scan.text("一路顺风", "Goodbye"),
                subtitle=scan.text(f"停车费 {yuan(session['fee'])}", f"Parking fee {yuan(session['fee'])}"),
            ),
            data={"fee": session["fee"], "order_id": session["order_id"]},
        )

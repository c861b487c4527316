"""乘车 transit: trips and fares by scan.

The rules (fares, transfers, the daily cap, unpaid fares) are stated and computed in
:mod:`miniapps.transit.rules`; this module keeps the trips in the database and charges them:

- Ride first, pay after: every charge is a deferred order through the payment centre.
- Offline buses: batch uploads reach here in scan-time order, each record once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from miniapps.contract import Display, Manifest, MiniApp, ScanDecision, ScanEvent
from miniapps.transit import demo, routes
from miniapps.transit.rules import (
    ENTRY_CONTEXTS,
    exit_fare,
    metro_distance,
    metro_fare,
    other_mode,
    price,
    refused_for_unpaid,
    service_day,
    transfer_window,
    yuan,
)
from miniapps.transit.tables import TransitLine, TransitStation, TransitTrip

__all__ = ["TransitApp", "metro_distance", "metro_fare"]  # the fare functions, where they used to live


class TransitApp(MiniApp):
    piccolo_app = "miniapps.transit.piccolo_app"  # its tables and migrations
    demo_scanners = demo.SCANNERS
    manifest = Manifest(
        id="transit",
        name_zh="乘车",
        name_en="Transit",
        version="1.0.0",
        description="Bus and metro by citizen code: ride first, pay after, daily cap, transfers.",
        description_zh="刷市民码乘公交、地铁：先乘车后付费，每日封顶，换乘优惠。",
        scopes=["openid"],
        entitlements=["transit"],
        scan_contexts={"bus": "transit", "metro-entry": "transit", "metro-exit": None},
        settings_schema={
            "daily_cap": {"type": "integer", "default": 1500},
            "transfer_minutes": {"type": "integer", "default": 90},
            "transfer_discount": {"type": "integer", "default": 100},
            "unpaid_limit": {"type": "integer", "default": 2000},
            "metro_max_fare": {"type": "integer", "default": 1000},
        },
    )

    def route_handlers(self) -> list[Any]:
        return routes.handlers(self.platform)

    def seed_demo(self) -> Any:
        return demo.seed()

    @property
    def cfg(self) -> dict[str, Any]:
        return self.platform.config

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        key = f"{scan.scanner.client_id}/{scan.record_id}"
        done = (
            await TransitTrip.select()
            .where((TransitTrip.entry_record == key) | (TransitTrip.exit_record == key))
            .first()
            .run()
        )
        if done is not None:  # the same record again (a retried upload): the same answer
            return self._allowed(done, scan)
        context = scan.scanner.context
        if context in ENTRY_CONTEXTS:
            owed = await self.platform.payments.unpaid_total(scan.openid)
            if refused_for_unpaid(owed, self.cfg["unpaid_limit"]):
                return ScanDecision(
                    allow=False,
                    reason="unpaid_fares",
                    data={"unpaid": owed},
                    display=Display(
                        title=scan.text("请先补缴车费", "Pay your fares first"),
                        subtitle=scan.text(f"未付车费 {yuan(owed)}", f"Unpaid fares {yuan(owed)}"),
                        color="red",
                    ),
                )
        if context == "bus":
            line = await TransitLine.select().where(TransitLine.code == scan.scanner.place).first().run()
            if line is None or line["kind"] != "bus":
                return ScanDecision(allow=False, reason="unknown_line")
            trip = await self._new_trip(
                scan, "bus", line["code"], entry="", state="done", fare=line["flat_fare"]
            )
            return self._allowed(await self._charge(trip, scan, line_name=line["name"]), scan)
        station = (
            await TransitStation.select(TransitStation.all_columns(), TransitStation.line.code)  # type: ignore[arg-type]
            .where(TransitStation.code == scan.scanner.place)
            .first()
            .run()
        )
        if station is None:
            return ScanDecision(allow=False, reason="unknown_station")
        open_trip = (
            await TransitTrip.select()
            .where(
                (TransitTrip.openid == scan.openid)
                & (TransitTrip.kind == "metro")
                & (TransitTrip.state == "open")
            )
            .order_by(TransitTrip.started_at, ascending=False)
            .first()
            .run()
        )
        if context == "metro-entry":
            if open_trip is not None:  # never tapped out: the maximum fare
                await self._close(
                    open_trip,
                    exit_code="",
                    ended=scan.scanned_at,
                    fare=self.cfg["metro_max_fare"],
                    rule="no_exit",
                    scan=scan,
                )
            trip = await self._new_trip(
                scan, "metro", station["line.code"], entry=station["code"], state="open", fare=0
            )
            return ScanDecision(
                allow=True,
                display=Display(
                    title=scan.text("请进站", "Please enter"),
                    # a station without an English name: an English screen names its code, never Chinese
                    subtitle=scan.text(station["name"], station["name_en"] or station["code"]),
                ),
                data={"trip_id": str(trip["id"])},
            )
        # metro-exit
        if open_trip is None:
            trip = await self._new_trip(scan, "metro", station["line.code"], entry="", state="open", fare=0)
            trip = await self._close(
                trip,
                exit_code=station["code"],
                ended=scan.scanned_at,
                fare=self.cfg["metro_max_fare"],
                rule="no_entry",
                scan=scan,
            )
        else:
            meters = await self._ridden(open_trip["entry_code"], station)
            trip = await self._close(
                open_trip,
                exit_code=station["code"],
                ended=scan.scanned_at,
                fare=exit_fare(meters, self.cfg["metro_max_fare"]),
                rule="",
                scan=scan,
            )
        return self._allowed(trip, scan)

    async def _ridden(self, entry_code: str, exit_station: dict[str, Any]) -> int | None:
        """Metres from the entry station to the exit station (through an interchange between lines)."""
        entry = (
            await TransitStation.select(TransitStation.meters, TransitStation.line.code)
            .where(TransitStation.code == entry_code)
            .first()
            .run()
        )
        if entry is None:
            return None
        entry_line, exit_line = entry["line.code"], exit_station["line.code"]
        interchanges: list[tuple[int, int]] = []
        if entry_line != exit_line:
            rows = (
                await TransitStation.select(
                    TransitStation.name, TransitStation.meters, TransitStation.line.code
                )
                .where(TransitStation.line.code.is_in([entry_line, exit_line]))
                .run()
            )
            on_entry = {r["name"]: r["meters"] for r in rows if r["line.code"] == entry_line}
            on_exit = {r["name"]: r["meters"] for r in rows if r["line.code"] == exit_line}
            interchanges = [(on_entry[n], on_exit[n]) for n in on_entry.keys() & on_exit.keys()]
        return metro_distance(
            (entry_line, entry["meters"]), (exit_line, exit_station["meters"]), interchanges
        )

    async def _new_trip(
        self, scan: ScanEvent, kind: str, line: str, *, entry: str, state: str, fare: int
    ) -> dict[str, Any]:
        trip_id = uuid.uuid4()
        await TransitTrip.insert(
            TransitTrip(
                id=trip_id,
                openid=scan.openid,
                kind=kind,
                line_code=line,
                entry_code=entry,
                started_at=scan.scanned_at,
                ended_at=scan.scanned_at if state == "done" else None,
                state=state,
                fare=fare,
                day=service_day(scan.scanned_at),
                entry_record=f"{scan.scanner.client_id}/{scan.record_id}",
            )
        ).run()
        row = await TransitTrip.select().where(TransitTrip.id == trip_id).first().run()
        assert row is not None
        return row

    async def _close(
        self, trip: dict[str, Any], *, exit_code: str, ended: datetime, fare: int, rule: str, scan: ScanEvent
    ) -> dict[str, Any]:
        await (
            TransitTrip.update(
                {
                    TransitTrip.exit_code: exit_code,
                    TransitTrip.ended_at: ended,
                    TransitTrip.fare: fare,
                    TransitTrip.rule: rule,
                    TransitTrip.state: "done",
                    TransitTrip.exit_record: f"{scan.scanner.client_id}/{scan.record_id}"
                    if exit_code
                    else None,
                }
            )
            .where(TransitTrip.id == trip["id"])
            .run()
        )
        row = await TransitTrip.select().where(TransitTrip.id == trip["id"]).first().run()
        assert row is not None
        return await self._charge(row, scan)

    async def _charge(self, trip: dict[str, Any], scan: ScanEvent, line_name: str = "") -> dict[str, Any]:
        """Price a finished trip (transfer, daily cap) and charge it as a deferred order. The order's
        description is the merchant's own words, in Chinese, stored once: the bus line's name, or the
        metro (priced by distance over the whole network, not by line)."""
        cfg = self.cfg
        window_start, window_end = transfer_window(trip["started_at"], cfg["transfer_minutes"])
        transfer = (
            await TransitTrip.exists()
            .where(
                (TransitTrip.openid == trip["openid"])
                & (TransitTrip.kind == other_mode(trip["kind"]))
                & (TransitTrip.state == "done")
                & (TransitTrip.ended_at >= window_start)
                & (TransitTrip.ended_at <= window_end)
            )
            .run()
        )
        spent_rows = (
            await TransitTrip.select(TransitTrip.charged)
            .where(
                (TransitTrip.openid == trip["openid"])
                & (TransitTrip.day == trip["day"])
                & (TransitTrip.id != trip["id"])
            )
            .run()
        )
        charge = price(
            trip["fare"],
            transfer=transfer,
            transfer_discount=cfg["transfer_discount"],
            spent_today=sum(r["charged"] for r in spent_rows),
            daily_cap=cfg["daily_cap"],
        )
        order_id = ""
        if charge.charged > 0:
            order = await self.platform.payments.create_order(
                openid=trip["openid"],
                reference=f"trip-{trip['id']}",
                amount=charge.charged,
                deferred=True,
                description=f"{line_name or trip['line_code']} 车费" if trip["kind"] == "bus" else "地铁车费",
            )
            order_id = order["order_id"]
        await (
            TransitTrip.update(
                {
                    TransitTrip.discount: charge.discount,
                    TransitTrip.capped: charge.capped,
                    TransitTrip.charged: charge.charged,
                    TransitTrip.order_id: order_id,
                }
            )
            .where(TransitTrip.id == trip["id"])
            .run()
        )
        row = await TransitTrip.select().where(TransitTrip.id == trip["id"]).first().run()
        assert row is not None
        return row

    def _allowed(self, trip: dict[str, Any], scan: ScanEvent) -> ScanDecision:
        subtitle = f"{yuan(trip['charged'])}"
        if trip["capped"]:
            subtitle += scan.text("（已达当日封顶）", " (daily cap)")
        if trip["discount"]:
            subtitle += scan.text("（换乘优惠）", " (transfer)")
        if scan.scanner.context == "metro-exit":
            title = scan.text("一路顺风", "Have a good trip")
        else:
            title = scan.text("请通行", "Welcome aboard")
        return ScanDecision(
            allow=True,
            display=Display(title=title, subtitle=subtitle),
            data={
                "trip_id": str(trip["id"]),
                "fare": trip["fare"],
                "discount": trip["discount"],
                "capped": trip["capped"],
                "charged": trip["charged"],
                "rule": trip["rule"],
            },
        )

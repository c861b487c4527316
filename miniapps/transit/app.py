"""乘车 transit: trips and fares by scan, decided at the gate from the rider's state.

The rules (fares, transfers, the daily cap, unpaid fares) are stated and computed in
:mod:`miniapps.transit.rules`; this module decides scans with them and keeps the books:

- A gate decides from state at hand (:meth:`TransitApp.decide`): the network (lines, stations, distances),
  read once per worker and again when a gate names a place it does not know; the rider's
  :class:`~miniapps.transit.rules.RiderState` (open metro trip, spend per day, recent trip ends), which
  the platform keeps in the store and reads with the code's claim; and what the citizen owes, which the
  platform counts. No database on a gate's path, but for a rider the store does not know yet
  (:meth:`TransitApp.load_state`).
- The trips and their fares are written behind the answer, in batches (:meth:`TransitApp.apply`): a trip
  is an upsert by its id (derived from the scan that started it), and never goes back from done to open;
  every charge is a deferred order (ride first, pay after) whose reference is the trip's, so applying a
  scan twice changes nothing.
- Offline buses: batch uploads reach here in scan-time order, each record once.
- The code's transit entitlement (``contributes=["transit"]``, :meth:`TransitApp.entitlement`): good
  standing unless the citizen's unpaid fares refuse an entrance. The platform is told only when it may
  flip: a decision whose fares take the unpaid total to the limit marks its effect, and ``apply`` tells
  the platform for the batch's marked riders; a paid fare order that brings them back under, in
  :meth:`TransitApp.on_payment_event`. A ride that leaves the standing as it was tells nobody.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from miniapps.contract import (
    Contribution,
    Display,
    Effect,
    Fast,
    InvalidInput,
    Manifest,
    MessageTemplate,
    MiniApp,
    Note,
    PaymentEvent,
    ScanDecision,
    ScanEvent,
)
from miniapps.transit import demo, routes
from miniapps.transit.rules import (
    ENTRY_CONTEXTS,
    Charge,
    OpenTrip,
    RiderState,
    back_under,
    crosses_limit,
    exit_fare,
    in_good_standing,
    metro_distance,
    metro_fare,
    priced_trip,
    refused_for_unpaid,
    service_day,
    yuan,
)
from miniapps.transit.tables import TransitLine, TransitStation, TransitTrip

__all__ = ["TransitApp", "metro_distance", "metro_fare"]  # the fare functions, where they used to live

# trip ids are derived from the scan that started the trip: applying it twice writes one trip
TRIP_IDS = uuid.UUID("6f1c2a52-3c0e-4d7a-9a8e-7b1e3f0c5d21")
# a gate naming a place the worker does not know reads the network again, at most this often (seconds)
RELOAD_INTERVAL = 1.0
# and every worker reads it again this often anyway (a station renamed, a fare changed)
NETWORK_TTL = 60.0
# a rider taken out of good standing by a fare is remembered this long (kv ``over:<openid>``), so the
# payment that brings them back tells the platform even when several are paid at once (seconds)
OVER_TTL = 30 * 24 * 3600.0
# fare orders' references (``trip-<trip id>``): a payment event of one may restore the standing
FARE_REFERENCE = "trip-"


class Trip(msgspec.Struct, array_like=True, frozen=True):
    """A trip as a scan leaves it (the effect written behind the decision)."""

    id: str
    kind: str
    line_code: str
    entry_code: str
    exit_code: str
    started: float
    ended: float | None
    state: str  # open | done
    rule: str
    fare: int
    discount: int
    capped: int
    charged: int
    entry_record: str
    exit_record: str | None
    description: str  # the order's, in the merchant's words (Chinese)


class Trips(msgspec.Struct, array_like=True, frozen=True):
    trips: list[Trip]
    # these fares took the rider's unpaid total to the limit: the code's transit entitlement flips
    # (last and defaulted: effects journalled before it decode as not crossing)
    crossed: bool = False


_state_decoder = msgspec.msgpack.Decoder(RiderState)
_trips_decoder = msgspec.msgpack.Decoder(Trips)
_encode = msgspec.msgpack.Encoder().encode


@dataclass(frozen=True)
class Line:
    code: str
    name: str
    kind: str
    flat_fare: int


@dataclass(frozen=True)
class Station:
    code: str
    name: str
    name_en: str
    line: str
    meters: int


@dataclass(frozen=True)
class Network:
    """Lines and stations as a worker keeps them (the network changes with a timetable, not per scan)."""

    lines: dict[str, Line]
    stations: dict[str, Station]
    # (entry line, exit line) -> [(metres along the entry line, along the exit line)] of interchanges
    interchanges: dict[tuple[str, str], list[tuple[int, int]]]

    def ridden(self, entry_code: str, exit_station: Station) -> int | None:
        entry = self.stations.get(entry_code)
        if entry is None:
            return None
        return metro_distance(
            (entry.line, entry.meters),
            (exit_station.line, exit_station.meters),
            self.interchanges.get((entry.line, exit_station.line), []),
        )


async def load_network() -> Network:
    lines = {
        r["code"]: Line(r["code"], r["name"], r["kind"], r["flat_fare"])
        for r in await TransitLine.select(
            TransitLine.code, TransitLine.name, TransitLine.kind, TransitLine.flat_fare
        ).run()
    }
    stations = {
        r["code"]: Station(r["code"], r["name"], r["name_en"], r["line.code"], r["meters"])
        for r in await TransitStation.select(
            TransitStation.code,
            TransitStation.name,
            TransitStation.name_en,
            TransitStation.meters,
            TransitStation.line.code,
        ).run()
    }
    by_name: dict[str, list[Station]] = {}
    for st in stations.values():
        by_name.setdefault(st.name, []).append(st)
    interchanges: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for same in by_name.values():  # stations of one name on two lines are an interchange
        for a in same:
            for b in same:
                if a.line != b.line:
                    interchanges.setdefault((a.line, b.line), []).append((a.meters, b.meters))
    return Network(lines, stations, interchanges)


def _ts(at: datetime) -> float:
    return at.timestamp()


def _day(ts: float) -> str:
    return service_day(datetime.fromtimestamp(ts, UTC))


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
        contributes=["transit"],
        templates={
            # every charged ride: the fare is deferred (ride first, pay after) and the rider told at once
            "fare_deferred": MessageTemplate(
                category="transactional",
                title_zh="乘车费用待支付",
                title_en="Fare to pay",
                body_zh="{trip} {amount} 已记入待支付，可在盛事通中支付。",
                # the trip is the line's Chinese name (the order's description): the English text does
                # without it, so an English screen holds no Chinese
                body_en="A fare of {amount} was added to what you owe; pay in Shengshitong.",
                placeholders={"trip": "text", "amount": "amount"},
                link="/wallet#orders",
                description="每次扣费乘车后 / after each charged ride",
            ),
            # the unpaid fares reached the limit: the code no longer carries transit until they are paid
            "unpaid_limit": MessageTemplate(
                category="transactional",
                title_zh="乘车权益已暂停",
                title_en="Riding paused",
                body_zh="待支付车费已达 {amount}，支付后即可恢复刷码乘车。",
                body_en="Unpaid fares reached {amount}; pay them to ride with your code again.",
                placeholders={"amount": "amount"},
                urgent=True,
                link="/wallet#orders",
                description="待支付车费达到上限时 / when unpaid fares reach the limit",
            ),
        },
        settings_schema={
            "daily_cap": {"type": "integer", "default": 1500},
            "transfer_minutes": {"type": "integer", "default": 90},
            "transfer_discount": {"type": "integer", "default": 100},
            "unpaid_limit": {"type": "integer", "default": 2000},
            "metro_max_fare": {"type": "integer", "default": 1000},
        },
    )

    def __init__(self, platform: Any) -> None:
        super().__init__(platform)
        self._network: Network | None = None
        self._loaded_at = 0.0

    def route_handlers(self) -> list[Any]:
        return routes.handlers(self.platform)

    async def seed_demo(self) -> Any:
        out = await demo.seed()
        self.network_changed()
        return out

    def network_changed(self) -> None:
        """Read the network again at the next scan (this worker's; the others within :data:`NETWORK_TTL`)."""
        self._network = None

    @property
    def cfg(self) -> dict[str, Any]:
        return self.platform.config

    # ---- the network -----------------------------------------------------------------------------
    async def network(self, place: str) -> Network:
        """The network, read again when ``place`` is not in it (a line or station added since)."""
        net, age = self._network, time.monotonic() - self._loaded_at
        if (
            net is None
            or age > NETWORK_TTL
            or (place not in net.lines and place not in net.stations and age > RELOAD_INTERVAL)
        ):
            self._loaded_at = time.monotonic()
            net = self._network = await load_network()
        return net

    # ---- deciding --------------------------------------------------------------------------------
    async def load_state(self, openid: str) -> bytes | None:
        """A rider the store does not know: the open metro trip, the last two days' spend and the ends of
        the last day's trips, from the books."""
        since = self.platform.now().timestamp() - 2 * 24 * 3600
        rows = (
            await TransitTrip.select(
                TransitTrip.id,
                TransitTrip.kind,
                TransitTrip.line_code,
                TransitTrip.entry_code,
                TransitTrip.started_at,
                TransitTrip.ended_at,
                TransitTrip.state,
                TransitTrip.charged,
                TransitTrip.day,
                TransitTrip.entry_record,
            )
            .where(
                (TransitTrip.openid == openid)
                & (
                    (TransitTrip.state == "open")
                    | (TransitTrip.started_at >= datetime.fromtimestamp(since, UTC))
                )
            )
            .order_by(TransitTrip.started_at)
            .run()
        )
        if not rows:
            return None
        state = RiderState()
        open_trip = None
        for r in rows:
            if r["state"] == "open":
                if r["kind"] == "metro":
                    open_trip = OpenTrip(
                        str(r["id"]), r["line_code"], r["entry_code"], _ts(r["started_at"]), r["entry_record"]
                    )
                continue
            state = state.finished(
                r["kind"], ended=_ts(r["ended_at"] or r["started_at"]), day=r["day"], charged=r["charged"]
            )
        return _encode(state.entered(open_trip))

    async def decide(self, scan: ScanEvent, state: bytes | None) -> Fast:
        rider = RiderState() if state is None else _state_decoder.decode(state)
        context = scan.scanner.context
        if context in ENTRY_CONTEXTS and refused_for_unpaid(scan.unpaid or 0, self.cfg["unpaid_limit"]):
            owed = scan.unpaid or 0
            return Fast(
                ScanDecision(
                    allow=False,
                    reason="unpaid_fares",
                    data={"unpaid": owed},
                    display=Display(
                        title=scan.text("请先补缴车费", "Pay your fares first"),
                        subtitle=scan.text(f"未付车费 {yuan(owed)}", f"Unpaid fares {yuan(owed)}"),
                        color="red",
                    ),
                )
            )
        net = await self.network(scan.scanner.place)
        now = _ts(scan.scanned_at)
        record = f"{scan.scanner.client_id}/{scan.record_id}"
        trip_id = str(uuid.uuid5(TRIP_IDS, record))
        if context == "bus":
            line = net.lines.get(scan.scanner.place)
            if line is None or line.kind != "bus":
                return Fast(ScanDecision(allow=False, reason="unknown_line"))
            trip, rider = self._finish(
                rider,
                kind="bus",
                line=line.code,
                trip_id=trip_id,
                entry="",
                exit_code="",
                started=now,
                ended=now,
                fare=line.flat_fare,
                rule="",
                entry_record=record,
                exit_record=None,
                description=f"{line.name} 车费",
            )
            return self._allowed([trip], rider, scan)
        station = net.stations.get(scan.scanner.place)
        if station is None:
            return Fast(ScanDecision(allow=False, reason="unknown_station"))
        max_fare = self.cfg["metro_max_fare"]
        trips: list[Trip] = []
        if context == "metro-entry":
            if rider.open is not None:  # never tapped out: the maximum fare
                left, rider = self._close(
                    rider, rider.open, ended=now, exit_code="", fare=max_fare, rule="no_exit"
                )
                trips.append(left)
            opened = OpenTrip(trip_id, station.line, station.code, now, record)
            trips.append(self._open_row(opened))
            rider = rider.entered(opened)
            return Fast(
                ScanDecision(
                    allow=True,
                    display=Display(
                        title=scan.text("请进站", "Please enter"),
                        # a station without an English name: an English screen names its code
                        subtitle=scan.text(station.name, station.name_en or station.code),
                    ),
                    data={"trip_id": trip_id},
                ),
                state=_encode(rider),
                effect=_encode(Trips(trips)),
            )
        # metro-exit
        if rider.open is None:
            trip, rider = self._finish(
                rider,
                kind="metro",
                line=station.line,
                trip_id=trip_id,
                entry="",
                exit_code=station.code,
                started=now,
                ended=now,
                fare=max_fare,
                rule="no_entry",
                entry_record=record,
                exit_record=record,
                description="地铁车费",
            )
        else:
            trip, rider = self._close(
                rider,
                rider.open,
                ended=now,
                exit_code=station.code,
                fare=exit_fare(net.ridden(rider.open.entry, station), max_fare),
                rule="",
                exit_record=record,
            )
        return self._allowed([trip], rider, scan)

    def _close(
        self,
        rider: RiderState,
        trip: OpenTrip,
        *,
        ended: float,
        exit_code: str,
        fare: int,
        rule: str,
        exit_record: str | None = None,
    ) -> tuple[Trip, RiderState]:
        """Close the rider's open metro trip (the entry's record stays the trip's)."""
        closed, rider = self._finish(
            rider.entered(None),
            kind="metro",
            line=trip.line,
            trip_id=trip.trip_id,
            entry=trip.entry,
            exit_code=exit_code,
            started=trip.started,
            ended=ended,
            fare=fare,
            rule=rule,
            entry_record=trip.record,
            exit_record=exit_record,
            description="地铁车费",
        )
        return closed, rider

    def _finish(
        self,
        rider: RiderState,
        *,
        kind: str,
        line: str,
        trip_id: str,
        entry: str,
        exit_code: str,
        started: float,
        ended: float,
        fare: int,
        rule: str,
        entry_record: str,
        exit_record: str | None,
        description: str,
    ) -> tuple[Trip, RiderState]:
        """A finished trip priced against the rider's state (transfer, daily cap), and the state after."""
        charge: Charge = priced_trip(rider, kind, fare, started=started, cfg=self.cfg)
        trip = Trip(
            id=trip_id,
            kind=kind,
            line_code=line,
            entry_code=entry,
            exit_code=exit_code,
            started=started,
            ended=ended,
            state="done",
            rule=rule,
            fare=fare,
            discount=charge.discount,
            capped=charge.capped,
            charged=charge.charged,
            entry_record=entry_record,
            exit_record=exit_record,
            description=description,
        )
        return trip, rider.finished(kind, ended=ended, day=_day(started), charged=charge.charged)

    @staticmethod
    def _open_row(trip: OpenTrip) -> Trip:
        return Trip(
            id=trip.trip_id,
            kind="metro",
            line_code=trip.line,
            entry_code=trip.entry,
            exit_code="",
            started=trip.started,
            ended=None,
            state="open",
            rule="",
            fare=0,
            discount=0,
            capped=0,
            charged=0,
            entry_record=trip.record,
            exit_record=None,
            description="",
        )

    def _allowed(self, trips: list[Trip], rider: RiderState, scan: ScanEvent) -> Fast:
        trip = trips[-1]
        owes = sum(t.charged for t in trips)
        subtitle = yuan(trip.charged)
        if trip.capped:
            subtitle += scan.text("（已达当日封顶）", " (daily cap)")
        if trip.discount:
            subtitle += scan.text("（换乘优惠）", " (transfer)")
        if scan.scanner.context == "metro-exit":
            title = scan.text("一路顺风", "Have a good trip")
        else:
            title = scan.text("请通行", "Welcome aboard")
        return Fast(
            ScanDecision(
                allow=True,
                display=Display(title=title, subtitle=subtitle),
                data={
                    "trip_id": trip.id,
                    "fare": trip.fare,
                    "discount": trip.discount,
                    "capped": trip.capped,
                    "charged": trip.charged,
                    "rule": trip.rule,
                },
            ),
            state=_encode(rider),
            effect=_encode(
                Trips(trips, crossed=crosses_limit(scan.unpaid or 0, owes, self.cfg["unpaid_limit"]))
            ),
            owes=owes,
        )

    # ---- the books, behind the gate --------------------------------------------------------------
    async def apply(self, effects: list[Effect]) -> None:
        """Write the trips of decided scans: their fares as deferred orders (one insert for the batch),
        then the trips (one upsert: a trip is written as its last scan in the batch left it, and a done
        trip is never opened again by a replayed entry)."""
        latest: dict[str, tuple[str, Trip]] = {}
        crossed: set[str] = set()
        for effect in effects:
            if effect.data:
                decoded = _trips_decoder.decode(effect.data)
                for trip in decoded.trips:
                    latest[trip.id] = (effect.openid, trip)
                if decoded.crossed:
                    crossed.add(effect.openid)
        if not latest:
            return
        orders = await self.platform.payments.create_deferred_orders(
            [
                {
                    "openid": openid,
                    "reference": f"trip-{t.id}",
                    "amount": t.charged,
                    "description": t.description,
                }
                for openid, t in latest.values()
                if t.state == "done" and t.charged > 0
            ]
        )
        await self.platform.upsert(
            TransitTrip,
            [
                {
                    "id": uuid.UUID(t.id),
                    "openid": openid,
                    "kind": t.kind,
                    "line_code": t.line_code,
                    "entry_code": t.entry_code,
                    "exit_code": t.exit_code,
                    "started_at": datetime.fromtimestamp(t.started, UTC),
                    "ended_at": None if t.ended is None else datetime.fromtimestamp(t.ended, UTC),
                    "day": _day(t.started),
                    "state": t.state,
                    "rule": t.rule,
                    "fare": t.fare,
                    "discount": t.discount,
                    "capped": t.capped,
                    "charged": t.charged,
                    "order_id": orders.get(f"trip-{t.id}", ""),
                    "entry_record": t.entry_record,
                    "exit_record": t.exit_record,
                }
                for openid, t in latest.values()
            ],
            key="id",
            only_if=("state", "open"),  # a replayed entry never reopens a trip that was closed
        )
        # the riders told, in the same transaction as their fares (once each: keyed by the trip)
        notes = [
            Note(
                openid,
                "fare_deferred",
                {"trip": t.description[:64] or "乘车", "amount": t.charged},
                f"fare-{t.id}",
            )
            for openid, t in latest.values()
            if t.state == "done" and t.charged > 0
        ]
        if crossed:  # out of good standing: their codes lose the transit entitlement (one call a batch)
            for openid in crossed:
                await self.platform.kv_set(f"over:{openid}", "1", ttl=OVER_TTL)
                owed = await self.platform.payments.unpaid_total(openid)
                day = _day(self.platform.now().timestamp())
                notes.append(Note(openid, "unpaid_limit", {"amount": owed}, f"unpaid-limit-{openid}-{day}"))
            await self.platform.entitlement_changed(*sorted(crossed))
        await self.platform.notify_many(notes)

    # ---- the code's transit entitlement ----------------------------------------------------------
    async def entitlement(self, openid: str, name: str, at: datetime) -> Contribution:
        """``transit``: good standing unless the citizen's unpaid fares (deferred orders of every mini-app,
        as a gate counts them) refuse an entrance; refused: ``unpaid_fares`` with what is owed and the
        limit."""
        limit = self.cfg["unpaid_limit"]
        try:
            owed = await self.platform.payments.unpaid_total(openid)
        except InvalidInput as e:  # a citizen who never rode: the payment centre has no openid of ours
            if e.code != "unknown_openid":
                raise
            return Contribution(granted=True)
        if in_good_standing(owed, limit):
            return Contribution(granted=True)
        return Contribution(granted=False, reason="unpaid_fares", detail={"unpaid": owed, "limit": limit})

    async def on_payment_event(self, event: PaymentEvent) -> None:
        """A fare order paid (or closed): when that brings the rider back under the limit, their codes
        get the transit entitlement again."""
        if event.type not in ("order.paid", "order.closed") or not event.reference.startswith(FARE_REFERENCE):
            return
        owed = await self.platform.payments.unpaid_total(event.openid)
        flagged = await self.platform.kv_get(f"over:{event.openid}") == b"1"
        if back_under(owed, event.amount, self.cfg["unpaid_limit"], flagged=flagged):
            await self.platform.entitlement_changed(event.openid)
            if flagged:
                await self.platform.kv_set(f"over:{event.openid}", "0", ttl=1)

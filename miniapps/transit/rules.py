"""Transit's rules as pure functions: no database, no clock (times are passed in), no I/O.

- Bus: the line's flat fare at boarding.
- Metro: charged at the exit by the distance ridden: up to 6 km 3 yuan, 12 km 4, 22 km 5, 32 km 6, then
  1 yuan per further (started) 20 km, at most the maximum fare. Between two lines the distance runs
  through the interchange that makes it shortest; lines that do not meet, an exit without an entry
  (``no_entry``) and an entry while a trip is still open (``no_exit``) cost the maximum fare.
- Transfer: a boarding within ``transfer_minutes`` of the end of a trip of the other mode takes
  ``transfer_discount`` off, never below zero.
- Daily cap: what a citizen pays in one China-time day never exceeds ``daily_cap``; the rest is waived
  and shown as capped.
- Unpaid fares of ``unpaid_limit`` or more refuse a bus or metro entrance, never an exit.
- Standing: the code's transit entitlement is held exactly while unpaid fares would not refuse an
  entrance (:func:`in_good_standing`); it flips when a fare takes the unpaid total to the limit
  (:func:`crosses_limit`) and back when a payment brings it under (:func:`back_under`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

CHINA = timezone(timedelta(hours=8))
# the scan contexts where a citizen gets on (and may be refused for unpaid fares); an exit always opens
ENTRY_CONTEXTS = frozenset({"bus", "metro-entry"})
# (metres up to which, fare in fen), then 100 fen per further 20 km started
METRO_BANDS = ((6_000, 300), (12_000, 400), (22_000, 500), (32_000, 600))
METRO_STEP_METERS, METRO_STEP_FARE = 20_000, 100


def service_day(at: datetime) -> str:
    """The China-time day a trip counts to (for the daily cap), ``"2026-11-25"``."""
    return at.astimezone(CHINA).date().isoformat()


def metro_fare(meters: int, max_fare: int) -> int:
    """The fare in fen for ``meters`` ridden on the metro, at most ``max_fare``."""
    for limit, fare in METRO_BANDS:
        if meters <= limit:
            return min(fare, max_fare)
    last_limit, last_fare = METRO_BANDS[-1]
    steps = -(-(meters - last_limit) // METRO_STEP_METERS)  # every started 20 km
    return min(last_fare + METRO_STEP_FARE * steps, max_fare)


def metro_distance(
    entry: tuple[str, int], exit_: tuple[str, int], interchanges: list[tuple[int, int]]
) -> int | None:
    """Metres ridden from ``entry`` to ``exit_``, each ``(line, metres along it)``: along one line, or
    through the best interchange, given as ``(metres along the entry line, along the exit line)``; None
    when the lines do not meet."""
    (entry_line, a), (exit_line, b) = entry, exit_
    if entry_line == exit_line:
        return abs(a - b)
    return min((abs(a - x) + abs(y - b) for x, y in interchanges), default=None)


def exit_fare(meters: int | None, max_fare: int) -> int:
    """The metro fare at an exit: by distance, or the maximum fare when no distance can be told."""
    return max_fare if meters is None else metro_fare(meters, max_fare)


def refused_for_unpaid(owed: int, unpaid_limit: int) -> bool:
    """Whether unpaid fares of ``owed`` fen refuse an entrance (ride first, pay after: up to the limit)."""
    return owed >= unpaid_limit


def in_good_standing(owed: int, unpaid_limit: int) -> bool:
    """Whether a citizen owing ``owed`` fen holds the transit entitlement: exactly when an entrance would
    not be refused for unpaid fares."""
    return not refused_for_unpaid(owed, unpaid_limit)


def crosses_limit(owed_before: int, owes: int, unpaid_limit: int) -> bool:
    """Whether new fares of ``owes`` fen take a citizen owing ``owed_before`` out of good standing (the
    only rides after which the code must change: most rides change nothing)."""
    return in_good_standing(owed_before, unpaid_limit) and not in_good_standing(
        owed_before + owes, unpaid_limit
    )


def back_under(owed_after: int, paid: int, unpaid_limit: int, *, flagged: bool = False) -> bool:
    """Whether a payment of ``paid`` fen that left the citizen owing ``owed_after`` brought them back into
    good standing: they are in it now and were not before it, or were known to have left it
    (``flagged``: several payments at once each see only the total after all of them)."""
    return in_good_standing(owed_after, unpaid_limit) and (
        flagged or not in_good_standing(owed_after + paid, unpaid_limit)
    )


def other_mode(kind: str) -> str:
    """The mode a transfer comes from: a bus boarding after a metro trip, a metro trip after a bus."""
    return "metro" if kind == "bus" else "bus"


def transfer_window(started_at: datetime, transfer_minutes: int) -> tuple[datetime, datetime]:
    """A trip starting at ``started_at`` is a transfer when a trip of the other mode ended within these
    bounds (both included)."""
    return started_at - timedelta(minutes=transfer_minutes), started_at


class Charge(NamedTuple):
    """How a trip's fare is paid, in fen: ``fare == discount + capped + charged``, none negative."""

    discount: int  # the transfer discount
    capped: int  # waived by the daily cap
    charged: int  # what the citizen pays (a deferred order when above zero)


def price(fare: int, *, transfer: bool, transfer_discount: int, spent_today: int, daily_cap: int) -> Charge:
    """Price a finished trip of ``fare`` fen: the transfer discount first (never more than the fare),
    then the daily cap against what the citizen already paid that day (``spent_today``)."""
    discount = max(0, min(transfer_discount, fare)) if transfer else 0
    due = fare - discount
    charged = max(0, min(due, daily_cap - spent_today))
    return Charge(discount=discount, capped=due - charged, charged=charged)


def yuan(fen: int) -> str:
    """``¥2.00`` for 200 fen (what a gate screen shows)."""
    return f"¥{fen // 100}.{fen % 100:02d}"


# ---- the rider's state: what a gate decides from ------------------------------------------------
# Kept by the platform between scans (``Fast.state``); every decision reads it and leaves a new one.

ENDS_KEPT = 32  # finished trips remembered for transfers (those within a day of the newest)
DAY_SECONDS = 24 * 3600


class OpenTrip(NamedTuple):
    """A metro trip entered and not yet left."""

    trip_id: str
    line: str
    entry: str  # the station's code
    started: float  # unix seconds
    record: str  # the entry scan's "<scanner>/<record id>"


class RiderState(NamedTuple):
    """A rider's transit state: the open metro trip, what was charged per service day (the last two),
    and when recent trips of each mode ended (for transfers). Immutable: every change makes a new one
    (kept between scans by the platform, encoded by the app)."""

    open: OpenTrip | None = None
    spent: dict[str, int] = {}  # never changed in place: a change makes a new dict
    ends: tuple[tuple[str, float], ...] = ()  # (bus | metro, ended at)

    def spent_on(self, day: str) -> int:
        return self.spent.get(day, 0)

    def transfer(self, kind: str, started: float, transfer_minutes: int) -> bool:
        """Whether a trip of ``kind`` starting at ``started`` is a transfer: a trip of the other mode
        ended within ``transfer_minutes`` before it (both ends included)."""
        other = other_mode(kind)
        earliest = started - transfer_minutes * 60
        return any(mode == other and earliest <= ended <= started for mode, ended in self.ends)

    def finished(self, kind: str, *, ended: float, day: str, charged: int) -> RiderState:
        """The state after a trip of ``kind`` boarded on service day ``day`` ended, charged ``charged``."""
        spent = {**self.spent, day: self.spent_on(day) + charged}
        spent = dict(sorted(spent.items())[-2:])  # the daily cap looks at one day; keep two
        ends = sorted([*self.ends, (kind, ended)], key=lambda e: e[1])
        newest = ends[-1][1]
        kept = tuple(e for e in ends if e[1] >= newest - DAY_SECONDS)[-ENDS_KEPT:]
        return RiderState(open=self.open, spent=spent, ends=kept)

    def entered(self, trip: OpenTrip | None) -> RiderState:
        return RiderState(open=trip, spent=self.spent, ends=self.ends)


def priced_trip(state: RiderState, kind: str, fare: int, *, started: float, cfg: dict[str, int]) -> Charge:
    """Price a finished trip boarded at ``started`` against the rider's state (transfer, daily cap)."""
    return price(
        fare,
        transfer=state.transfer(kind, started, cfg["transfer_minutes"]),
        transfer_discount=cfg["transfer_discount"],
        spent_today=state.spent_on(service_day(datetime.fromtimestamp(started, CHINA))),
        daily_cap=cfg["daily_cap"],
    )

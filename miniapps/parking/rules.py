"""Parking's rules as pure functions: no database, no clock (times are passed in), no I/O.

- Free spaces = capacity - occupied - reserved, never below zero.
- A reservation holds a space from booking until ``starts_at`` + ``grace_minutes``; after that it lapses.
- A citizen who subscribed is reminded ``REMIND_BEFORE`` (10 minutes) before a reservation lapses (at
  once when it lapses sooner than that).
- The fee at the exit: nothing within the car park's free minutes; otherwise every started hour at the
  hourly rate, each 24 hours at most the daily maximum.
- A plate the citizen registers is checked against their vehicle licence (机动车行驶证), read with their
  consent: ``verified`` when the licence's plate number is the plate (both as :func:`plate` writes
  them), else ``mismatch``; a consent that gives nothing leaves it ``refused`` (the citizen said no, or
  withdrew it) or ``lapsed`` (nobody answered in time, or the licence was not valid when read).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

DAY_MINUTES = 24 * 60
REMIND_BEFORE = timedelta(minutes=10)  # the lapse reminder comes this long before the lapse
REMIND_WITHIN = timedelta(days=30)  # a reservation lapsing later than this is not reminded of


def parking_fee(
    entry: datetime, exit_: datetime, *, free_minutes: int, hourly_rate: int, daily_max: int
) -> int:
    """The fee in fen for a stay from ``entry`` to ``exit_`` (started minutes count whole)."""
    minutes = max(0, math.ceil((exit_ - entry).total_seconds() / 60))
    if minutes <= free_minutes:
        return 0
    days, rest = divmod(minutes, DAY_MINUTES)
    return days * daily_max + min(math.ceil(rest / 60) * hourly_rate, daily_max)


def free_spaces(capacity: int, occupied: int, reserved: int) -> int:
    """Spaces a car may take now (a reserved space is not free)."""
    return max(0, capacity - occupied - reserved)


def reservation_expires(starts_at: datetime, grace_minutes: int) -> datetime:
    """When a reservation starting at ``starts_at`` lapses if the car has not arrived."""
    return starts_at + timedelta(minutes=grace_minutes)


def plate(text: str) -> str:
    """A licence plate as stored and compared: upper case (粤b12345 is 粤B12345)."""
    return text.upper()


VEHICLE_LICENCE = "vehicle_licence"  # the licence type parking asks for
PLATE_FIELDS = ("plate_number", "vehicle_type")  # only what the check needs, nothing about the owner
PLATE_STATES = ("pending", "verified", "mismatch", "refused", "lapsed")
# a consent that gives no fields, by the platform's reason: what became of the plate
_UNSHARED = {
    "consent_refused": "refused",
    "consent_revoked": "refused",
    "consent_expired": "lapsed",
    "consent_used": "lapsed",
    "licence_suspended": "lapsed",
    "licence_revoked": "lapsed",
}


def plate_purpose(registered: str) -> str:
    """What the citizen is told the fields are for (Chinese, as the request shows it to them)."""
    return f"好停车登记车牌{registered}：核对您的机动车行驶证上的号牌号码与车辆类型，确认此车牌是您的车辆"


def plate_checked(registered: str, licence_plate: str) -> str:
    """``verified`` when the licence's plate number is the registered plate, else ``mismatch``."""
    return "verified" if licence_plate and plate(licence_plate) == plate(registered) else "mismatch"


def plate_unshared(reason: str) -> str:
    """The state of a plate whose consent gives no fields (``reason``: the platform's code, e.g.
    ``consent_refused``): ``refused`` when the citizen said no, else ``lapsed``."""
    return _UNSHARED.get(reason, "lapsed")


def yuan(fen: int) -> str:
    """``¥8.00`` for 800 fen (what the barrier's screen shows)."""
    return f"¥{fen // 100}.{fen % 100:02d}"


def lapse_reminder_at(expires_at: datetime, now: datetime) -> datetime | None:
    """When to remind the citizen that a reservation lapsing at ``expires_at`` is about to: 10 minutes
    before (``now`` when that has passed); None when it lapsed already or lapses too far ahead to
    schedule a message for."""
    if expires_at <= now or expires_at - now > REMIND_WITHIN:
        return None
    return max(expires_at - REMIND_BEFORE, now)

"""Parking's rules as pure functions: no database, no clock (times are passed in), no I/O.

- Free spaces = capacity - occupied - reserved, never below zero.
- A reservation holds a space from booking until ``starts_at`` + ``grace_minutes``; after that it lapses.
- A citizen who subscribed is reminded ``REMIND_BEFORE`` (10 minutes) before a reservation lapses (at
  once when it lapses sooner than that).
- The fee at the exit: nothing within the car park's free minutes; otherwise every started hour at the
  hourly rate, each 24 hours at most the daily maximum.
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

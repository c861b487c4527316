"""Working days in China: the deadlines of 好差评 cases (rectified within 15 working days) count them.

A working day is Monday to Friday unless it is a public holiday, and a Saturday or Sunday the State
Council made a working day (调休). Both come from ``chinese_calendar``, which follows the yearly notice.
A year the package does not know yet (the notice comes out in November or December) is counted Monday to
Friday and the answer says it is provisional: the case keeps a provisional deadline, and the ratings
round recomputes it once the year is known (after the package is upgraded). No I/O here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import chinese_calendar

from messages.templates import CHINA


def _known(day: date) -> bool | None:
    """Whether ``day`` is a working day, or None when the calendar does not know its year."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


def is_workday(day: date) -> tuple[bool, bool]:
    """(is a working day, known for sure): an unknown year counts Monday to Friday, not for sure."""
    known = _known(day)
    if known is None:
        return day.weekday() < 5, False
    return known, True


def china_day(at: datetime) -> date:
    return at.astimezone(CHINA).date()


def add_working_days(start: datetime, days: int) -> tuple[datetime, bool]:
    """The end of the ``days``-th working day after the day of ``start`` (China time), counted from the
    next day (自收到之日起), as the instant the next day begins; and whether every day counted was known
    (False: provisional, recompute when the calendar knows the year)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    day = china_day(start)
    exact = True
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        working, known = is_workday(day)
        exact = exact and known
        counted += working
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=CHINA)
    return end.astimezone(UTC), exact


def working_days_left(now: datetime, deadline: datetime) -> int:
    """Working days from tomorrow (China time) up to the deadline's last day; 0 on the last day or after."""
    last = china_day(deadline - timedelta(microseconds=1))
    day = china_day(now)
    left = 0
    while day < last:
        day += timedelta(days=1)
        left += is_workday(day)[0]
    return left

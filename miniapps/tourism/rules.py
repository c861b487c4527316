"""Tourism's rules as pure functions: no database, no clock (times are passed in), no I/O.

- Timed sessions: a session's window (``09:00-12:00``, China time) closes at its end; from then on it is
  neither listed nor sold (``session_over``) and its tickets no longer admit anyone.
- 一码入园: the gate admits one person per scan with a paid ticket of today whose window is open (the
  earliest first); otherwise it refuses ``already_used`` when a ticket of an open window was used,
  ``session_over`` when only tickets of a closed window are left, and ``no_ticket`` when there are none.
- A party's tickets are one order: the attraction's price times the party's size.
- Refunds: a paid ticket is refundable until ``refund_days`` days before its visit day.
- A citizen who subscribed is reminded of a paid order's session an hour before its window opens (at
  once when paid later than that, not at all once it has opened); a refund of the order's last paid
  ticket withdraws the reminder.
- Hotels: the booking checked in by a scan is the one for tonight (the China-time day of the scan).
- The code's tickets entitlement: held while the citizen has a paid ticket (unused, unrefunded) whose
  visit day is today, China time; it lapses by itself at the next China-time midnight
  (:func:`next_midnight`), or when the last such ticket is used or refunded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone

CHINA = timezone(timedelta(hours=8))
# an order in one of these states was paid: its tickets are valid (a later refund is per ticket)
PAID_STATES = frozenset({"paid", "partially_refunded", "refunded"})
REMIND_BEFORE = timedelta(hours=1)  # the session reminder comes this long before the window opens
REMIND_WITHIN = timedelta(days=30)  # a session further ahead is not reminded of


def service_day(at: datetime) -> str:
    """The China-time day of ``at``, ``"2026-11-25"``: a ticket's visit day, a hotel booking's night."""
    return at.astimezone(CHINA).date().isoformat()


def china_date(at: datetime) -> date:
    """The China-time date of ``at``."""
    return at.astimezone(CHINA).date()


def next_midnight(at: datetime) -> datetime:
    """The first China-time midnight after ``at`` (when a ticket valid on ``at``'s day stops being so)."""
    day = at.astimezone(CHINA).date() + timedelta(days=1)
    return datetime.combine(day, time(0), CHINA)


def window_closes(day: str, window: str) -> datetime:
    """When a timed session's entry window ends: ``("2026-11-25", "09:00-12:00")`` → 12:00 China time."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(window.rpartition("-")[2]), CHINA)


def window_opens(day: str, window: str) -> datetime:
    """When a timed session's entry window opens: ``("2026-11-25", "09:00-12:00")`` → 09:00 China time."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(window.partition("-")[0]), CHINA)


def session_reminder_at(day: str, window: str, now: datetime) -> datetime | None:
    """When to remind a ticket holder of the session of ``day`` and ``window``: an hour before it opens
    (``now`` when that has passed); None once it has opened or when it is too far ahead."""
    opens = window_opens(day, window)
    if opens <= now or opens - now > REMIND_WITHIN:
        return None
    return max(opens - REMIND_BEFORE, now)


def session_over(day: str, window: str, now: datetime) -> bool:
    """Whether the session of ``day`` and ``window`` has closed at ``now`` (closed at its end)."""
    return now >= window_closes(day, window)


def order_paid(state: str) -> bool:
    """Whether tickets bought in an order in ``state`` were paid."""
    return state in PAID_STATES


def party_amount(price: int, party: int) -> int:
    """What a party of ``party`` people pays in fen, at ``price`` per ticket (one order)."""
    return price * party


def refundable(today: date, visit_day: str, refund_days: int) -> bool:
    """Whether a paid ticket for ``visit_day`` may be refunded on ``today`` (until ``refund_days`` days
    before the visit day, that day included)."""
    return today <= date.fromisoformat(visit_day) - timedelta(days=refund_days)


def held_today(visit_days: Iterable[str], at: datetime) -> bool:
    """Whether paid, unused tickets with these visit days make the citizen hold a ticket valid at
    ``at`` (one whose visit day is ``at``'s China-time day)."""
    return service_day(at) in set(visit_days)


def gate_refusal(open_states: Iterable[str], closed_states: Iterable[str]) -> str:
    """Why the gate refuses a citizen none of whose tickets it could use, from the states of their
    tickets of today in an open window and in a closed one."""
    if "used" in set(open_states):
        return "already_used"
    if "paid" in set(closed_states):
        return "session_over"
    return "no_ticket"

"""Civic services' rules as pure functions: no database, no clock (times are passed in), no I/O.

- Service hall (社保服务大厅): a citizen whose code carries social security (the platform checks it)
  draws a queue number at the hall's kiosk for one window category (the kiosk's choice, else the
  hall's first). Numbers run per category per China-time day from 1 (``A001``), and start again the
  next day. A citizen who already waits in that line today is shown the same number again.
- The wait: those ahead of the citizen (waiting with a lower number) share the category's windows,
  :func:`wait_minutes` each ``minutes_per_person``.
- Health check point (健康检查点): only a green health status passes (the platform refuses yellow, red
  or unknown before the mini-app is asked; the mini-app refuses them too should one get through).
  Every pass is logged per check point and day.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))
NUMBER_DIGITS = 3  # A001 ... A999, then A1000 (a hall rarely issues that many in one line a day)
GREEN = "green"


def service_day(at: datetime) -> str:
    """The China-time day of ``at``, ``"2026-11-25"``: the day a queue number and a pass count to."""
    return at.astimezone(CHINA).date().isoformat()


def next_number(queue_day: str, issued: int, today: str) -> int:
    """The number the next citizen gets ``today`` in a line that last issued ``issued`` on
    ``queue_day``: one more, or 1 on a new day."""
    return issued + 1 if queue_day == today else 1


def queue_label(letter: str, number: int) -> str:
    """What the citizen and the hall's screens read: ``("A", 12)`` → ``"A012"``."""
    return f"{letter}{number:0{NUMBER_DIGITS}d}"


def wait_minutes(ahead: int, windows: int, minutes_per_person: int) -> int:
    """The estimated wait in whole minutes (rounded up) with ``ahead`` citizens before one, served at
    ``windows`` windows (at least one) taking ``minutes_per_person`` each."""
    windows = max(windows, 1)
    return -(-max(ahead, 0) * max(minutes_per_person, 0) // windows)


def pick_service(letters: list[str], wanted: str | None) -> str | None:
    """The window category a kiosk's scan draws a number for: ``wanted`` (the letter the citizen chose)
    when the hall has it, the hall's first when none was chosen; None: no such category."""
    if not wanted:
        return letters[0] if letters else None
    wanted = wanted.strip().upper()
    return wanted if wanted in letters else None


def health_passes(status: str | None) -> bool:
    """Whether a health status lets the holder through a check point: green only."""
    return status == GREEN


def hall_unit(hall_code: str) -> str:
    """A hall's unit in the evaluation centre: its code in lower case ("SS-HEPING" → "ss-heping")."""
    return hall_code.lower()[:32]

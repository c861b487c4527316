"""扫码门禁 doors: the decisions, as pure functions (no database, no clock: times are passed in; the
standard library only).

- Who opens a door: a resident of the place opens its doors of their building and every door of no
  building (the community's gates); a resident of no building (an office tenant) opens every door.
- A visitor pass opens the doors it names, from ``starts_at`` (inclusive) until ``ends_at``
  (exclusive), at most ``entries`` times; the refusal says which of these failed.
- The offline claim: E = H XOR HMAC-SHA256(K, cti)[:8], and the same function gives H back from E.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

HANDLE_LEN = 8

# reason -> (Chinese, English) for the gate screen
REASONS: dict[str, tuple[str, str]] = {
    "ok": ("欢迎回家", "Welcome"),
    "not_resident": ("非本小区住户，无通行权限", "Not a resident: no access"),
    "wrong_door": ("无权通行此门", "Not allowed through this door"),
    "pass_not_started": ("访客通行证尚未生效", "Visitor pass not valid yet"),
    "pass_expired": ("访客通行证已过期", "Visitor pass expired"),
    "pass_used_up": ("访客通行证次数已用完", "Visitor pass used up"),
    "pass_cancelled": ("访客通行证已被取消", "Visitor pass cancelled"),
    "visitor_offline": ("门禁离线，访客请联系物业", "Door offline: visitors call the property office"),
    "unknown_door": ("未登记的门", "Unknown door"),
}


def screen(reason: str, locale: str) -> str:
    zh, en = REASONS.get(reason, (reason, reason))
    return en if locale == "en" else zh


def opens(resident_building: int | None, door_building: int | None) -> bool:
    """Whether a resident (of this building, or of none) opens a door (of this building, or of none)."""
    return resident_building is None or door_building is None or resident_building == door_building


@dataclass(frozen=True, slots=True)
class PassView:
    id: str
    doors: frozenset[str]
    starts_at: datetime
    ends_at: datetime
    entries: int
    used: int
    cancelled: bool = False

    def admits(self, door: str, at: datetime) -> bool:
        return (
            not self.cancelled
            and door in self.doors
            and self.starts_at <= at < self.ends_at
            and self.used < self.entries
        )


def pass_decision(passes: list[PassView], door: str, at: datetime) -> tuple[str, PassView | None]:
    """("ok", the pass to use: the one ending first) or (the reason, None), for a visitor at ``door`` at
    ``at`` holding ``passes`` (all their passes of the door's place)."""
    if not passes:
        return "not_resident", None
    naming = [p for p in passes if door in p.doors]
    if not naming:
        return "wrong_door", None
    usable = [p for p in naming if p.admits(door, at)]
    if usable:
        return "ok", min(usable, key=lambda p: (p.ends_at, p.id))
    live = [p for p in naming if not p.cancelled]
    if not live:
        return "pass_cancelled", None
    if any(p.starts_at <= at < p.ends_at for p in live):
        return "pass_used_up", None
    if any(at < p.starts_at for p in live):
        return "pass_not_started", None
    return "pass_expired", None


def window_problem(
    starts_at: datetime, ends_at: datetime, now: datetime, *, max_hours: int, ahead_days: int
) -> str | None:
    """Why a visitor pass's window cannot be issued, or None."""
    if ends_at <= starts_at:
        return "bad_window"
    if ends_at <= now:
        return "window_over"
    if ends_at - starts_at > timedelta(hours=max_hours):
        return "window_too_long"
    if starts_at > now + timedelta(days=ahead_days):
        return "window_too_far"
    return None


def mask(handle: bytes, key: bytes, cti: bytes) -> bytes:
    """The code's claim for ``handle``, or the handle from the claim (XOR with HMAC-SHA256(key, cti)[:8])."""
    pad = hmac.new(key, cti, hashlib.sha256).digest()[:HANDLE_LEN]
    return bytes(a ^ b for a, b in zip(handle, pad, strict=True))


def list_window(now: int, *, refresh: int, validity: int) -> tuple[int, int]:
    """(issued_at, expires_at) of the door list served at ``now`` (Unix seconds): the same all through a
    refresh period, so a door that syncs again within it gets 304 and the same bytes."""
    issued = now - now % refresh
    return issued, issued + validity


def masked(openid: str) -> str:
    """A pairwise id as a manager's list shows it: enough to tell rows apart, not the id."""
    return openid[:6] + "…"

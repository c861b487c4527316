"""The long-lived objects one app instance shares: settings, engine, store, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from piccolo.engine.base import Engine

from backend.clock import Clock, SystemClock
from backend.settings import Settings
from backend.store import Store


class ScanSeen(NamedTuple):
    """One decided scan, as observers (the live dashboard) see it: no citizen, no code."""

    app_id: str
    result: str  # allow | deny
    reason: str
    seconds: float  # time to decide, online scans; 0.0 for offline uploads
    offline: bool


ScanObserver = Callable[[ScanSeen], None]


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    store: Store
    clock: Clock = field(default_factory=SystemClock)
    # Services built by package plugins, by name (e.g. "auth.tokens"); read through deps, not directly.
    services: dict[str, Any] = field(default_factory=dict)
    # Background work (webhook delivery, order closing) runs in servers, not in one-off CLI commands.
    background: bool = True
    # Called synchronously for every decided scan; must be cheap and must not raise (count, not await).
    scan_observers: list[ScanObserver] = field(default_factory=list)

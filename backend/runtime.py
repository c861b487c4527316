"""The long-lived objects one app instance shares: settings, engine, store, clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from piccolo.engine.base import Engine

from backend.clock import Clock, SystemClock
from backend.settings import Settings
from backend.store import Store


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

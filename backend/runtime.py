"""The long-lived objects one app instance shares: settings, engine, store, clock.

Packages build their services on top of these in the composition root (``backend.app``), each from the
services it depends on, passed in. A package finds its own services on a running app through its
:class:`Slot` (guards, CLI commands): typed, defined once beside the services' type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar, cast

from litestar import Litestar
from litestar.datastructures import State
from piccolo.engine.base import Engine

from backend import db
from backend.clock import Clock, SystemClock
from backend.live import Live
from backend.settings import Settings
from backend.store import Store, create_store


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
    engine: Engine[Any]
    store: Store
    clock: Clock = field(default_factory=SystemClock)
    # Background work (webhook delivery, order closing) runs in servers, not in one-off CLI commands.
    background: bool = True
    # False in an operator's command: a mini-app's own listener (a kiosk's TCP port) is the server's.
    serving: bool = True
    # Called synchronously for every decided scan; must be cheap and must not raise (count, not await).
    scan_observers: list[ScanObserver] = field(default_factory=list)
    # events to citizens' open apps, across workers (built on the store)
    live: Live = field(init=False)

    def __post_init__(self) -> None:
        self.live = Live(self.store)


T = TypeVar("T")


class Slot(Generic[T]):
    """Where one package's services sit on an app: ``AUTH = Slot[AuthServices]("auth")`` beside the type,
    ``AUTH.put(app_config.state, services)`` in the package's plugin, ``AUTH.of(app)`` wherever the
    package needs them without dependency injection (a guard, a CLI command)."""

    __slots__ = ("key",)

    def __init__(self, name: str) -> None:
        self.key = f"services.{name}"

    def put(self, state: State, services: T) -> None:
        state[self.key] = services

    def of(self, app: Litestar) -> T:
        return cast(T, app.state[self.key])


def build_runtime(settings: Settings, *, clock: Clock | None = None, store: Store | None = None) -> Runtime:
    return Runtime(
        settings=settings,
        engine=db.create_engine(settings),
        store=store or create_store(settings.redis_url, settings.store_prefix),
        clock=clock or SystemClock(),
    )

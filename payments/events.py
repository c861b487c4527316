"""Order events as the payment centre hands them to subscribers inside the platform.

Every order event goes out through the outbox and one durable queue: to the owner's webhook endpoints,
and, for an owner of a kind a platform package subscribed to (``miniapp``: the mini-app platform), to
that package's handler. The payment centre knows nothing of what is above it: a subscriber registers
its handler here when it is built, and gets typed events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

EventType = Literal["order.paid", "order.refunded", "order.failed", "order.closed", "order.overpaid"]


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    owner: str  # "miniapp:<app_id>" or "merchant:<client_id>"
    order_id: str
    reference: str  # the owner's reference for the order
    amount: int  # fen
    refunded: int
    at: datetime
    data: dict[str, Any]

    @classmethod
    def from_outbox(cls, event: dict[str, Any]) -> OrderEvent:
        data = dict(event["data"])
        return cls(
            id=str(event["id"]),
            type=str(event["type"]),
            owner=str(data.get("owner", "")),
            order_id=str(data["order_id"]),
            reference=str(data.get("reference", "")),
            amount=int(data.get("amount", 0)),
            refunded=int(data.get("refunded", 0)),
            at=datetime.fromtimestamp(event["created"], UTC),
            data=data,
        )


# (the owner's id within its kind, e.g. an app id; the event) -> done; raising means "deliver again"
OwnerHandler = Callable[[str, OrderEvent], Awaitable[None]]


class OwnerSubscribers:
    """The platform's handlers of order events, by owner kind (one handler per kind), and its observers
    of every order event (target ``observer:<name>``)."""

    def __init__(self) -> None:
        self._handlers: dict[str, OwnerHandler] = {}
        self._observers: dict[str, OwnerHandler] = {}

    def subscribe(self, kind: str, handler: OwnerHandler) -> None:
        if kind in self._handlers:
            raise ValueError(f"order events of {kind!r} owners already have a handler")
        self._handlers[kind] = handler

    def handler(self, kind: str) -> OwnerHandler | None:
        return self._handlers.get(kind)

    def observe(self, name: str, handler: OwnerHandler) -> None:
        """``handler`` gets every order event, whoever owns the order (the message centre tells the
        citizen of a payment or a refund), through the same durable queue: at least once each."""
        if name in self._observers:
            raise ValueError(f"an observer of order events named {name!r} is there already")
        self._observers[name] = handler

    def observers(self) -> list[str]:
        return sorted(self._observers)

    def observer(self, name: str) -> OwnerHandler | None:
        return self._observers.get(name)

"""What every payment channel adapter provides."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Literal

import msgspec


class NotificationRejected(Exception):
    """The callback is not genuine or not readable: answer the channel's failure reply, change nothing."""

    def __init__(self, reason: str, detail: str = "", status: int = 400) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.status = status


class Notification(msgspec.Struct, frozen=True):
    """A verified callback, reduced to what the payment centre acts on."""

    channel: str
    notify_id: str  # the channel's id for this notification: the same across resends
    kind: Literal["payment", "refund", "closed"]
    order_ref: str  # our order id as the channel knows it (out_trade_no)
    amount: int  # fen: the payment's total, or the refund's amount
    channel_txn: str  # the channel's transaction (or refund) id
    refund_ref: str = ""  # our refund id (out_refund_no) for refunds
    summary: dict[str, Any] = msgspec.field(default_factory=dict)  # non-secret fields for the record


class Reply(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    media_type: str


class Channel(ABC):
    name: str

    @abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> list[Notification]:
        """Verify the callback over the raw bytes and parse it; raise NotificationRejected."""

    @abstractmethod
    def success(self) -> Reply: ...

    @abstractmethod
    def failure(self, message: str, status: int = 400) -> Reply: ...

    @abstractmethod
    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        """What the citizen's app needs to pay this order in this channel."""

    async def request_refund(self, refund: dict[str, Any]) -> tuple[dict[str, str], bytes] | None:
        """Ask the channel to refund. Channels that confirm by a later callback return None; one that
        confirms at once returns that callback (headers, raw body) for the usual verification path."""
        from backend.errors import ServiceUnavailable

        raise ServiceUnavailable(
            f"refunds through {self.name} need its refund API, which this deployment "
            "cannot reach; refund at the channel's console (its callback is applied here)",
            code="channel_refund_unavailable",
        )

"""What every payment channel provides, and how a channel package declares itself.

A channel is one module and one entry point in the ``shengshitong.payment_channels`` group naming its
:class:`ChannelPlugin`: its :class:`Channel` class (name, capabilities), its settings (a msgspec Struct
read from ``SHENGSHI_<NAME>_<FIELD>``) and how it is built from them and the :class:`ChannelContext`
the platform gives every channel. See docs/payments.md, "Adding a payment channel".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

import msgspec
from msgspec import Meta

from backend.edge import json_too_deep
from backend.errors import InvalidInput, NotFound, ServiceUnavailable
from backend.settings import decode_key

# The contract a channel package imports (nothing else of the platform): the names below, and what
# the platform's errors and helpers a channel needs are re-exported here.
__all__ = [
    "CALLBACK_MAX_DEPTH",
    "Callback",
    "Capability",
    "Channel",
    "ChannelContext",
    "ChannelName",
    "ChannelPlugin",
    "InvalidInput",
    "NoSettings",
    "Notification",
    "NotificationRejected",
    "Reply",
    "ServiceUnavailable",
    "SettingsProblem",
    "Statement",
    "StatementRow",
    "channel_busy",
    "channel_time",
    "decode_key",
    "json_too_deep",
    "refund_unavailable",
]

# How deep a channel's JSON may nest before it is refused undecoded (a decoder recurses per level, up to
# Python's limit). WeChat's notices are 3 levels deep; a channel's fields the payment centre ignores
# may nest a little more, and are not held to the API's own limit (backend.edge.MAX_JSON_DEPTH).
CALLBACK_MAX_DEPTH = 100


class NotificationRejected(Exception):
    """The callback is not genuine or not readable: answer the channel's failure reply, change nothing."""

    def __init__(self, reason: str, detail: str = "", status: int = 400) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.status = status


def refund_unavailable(channel: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"refunds through {channel} need its refund API, which this deployment "
        "cannot reach; refund at the channel's console (its callback is applied here)",
        code="channel_refund_unavailable",
        channel=channel,
    )


# What a notification's text may hold, checked once for every channel (:meth:`Notification.checked`):
# printable text, no control character (Unicode's category Cc: C0, DEL, C1; PostgreSQL cannot store
# NUL at all) and no lone surrogate, in lengths that fit the record's columns. A genuine notification
# with anything else is refused as unreadable rather than failing in the database.
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f\ud800-\udfff]*\Z"
Ref = Annotated[str, Meta(max_length=64, pattern=PRINTABLE)]
Txn = Annotated[str, Meta(max_length=96, pattern=PRINTABLE)]
Word = Annotated[str, Meta(max_length=64, pattern=PRINTABLE)]  # a status, a time, as the channel writes it


class Notification(msgspec.Struct, frozen=True):
    """A verified callback, reduced to what the payment centre acts on."""

    channel: Annotated[str, Meta(max_length=16, pattern=PRINTABLE)]
    # the channel's id for this notification: the same across resends
    notify_id: Annotated[str, Meta(min_length=1, max_length=120, pattern=PRINTABLE)]
    # refund_failed: the channel closed a refund or could not pay it out (``failure`` says which);
    # closed: the channel closed its trade for the order (that channel's payment attempt ended);
    # status: the channel tells a trade's state that changes nothing here (recorded, acknowledged)
    kind: Literal["payment", "refund", "refund_failed", "closed", "status"]
    order_ref: Ref  # our order id as the channel knows it (out_trade_no)
    # fen: the payment's total, or the refund's amount (the total refunded so far when ``cumulative``)
    amount: Annotated[int, Meta(ge=0, le=2_000_000_000)]
    channel_txn: Txn  # the channel's transaction (or refund) id
    refund_ref: Ref = ""  # our refund id (out_refund_no) for refunds
    payment_txn: Txn = ""  # for refunds: the channel's id of the payment refunded
    cumulative: bool = False  # the refund amount is the payment's refunded total (Alipay's refund_fee)
    currency: Annotated[str, Meta(max_length=8, pattern=PRINTABLE)] = "CNY"
    failure: Word = ""  # refund_failed: the channel's refund status
    # when the channel says the money moved (WeChat's success_time, Alipay's gmt_payment or gmt_refund),
    # UTC: the channel's business day, by which its statement lists it; None when it tells none
    channel_time: Annotated[datetime, Meta(tz=True)] | None = None
    # set by the channel when the genuine notification names another merchant or app: the payment
    # centre records it and refuses it (like an amount that does not match), never applies it
    refusal: str = ""
    # non-secret fields for the record (the channel's status and times, as it wrote them)
    summary: dict[Word, Word | None] = msgspec.field(default_factory=dict)

    def checked(self) -> Notification:
        """This notification if it fits what is recorded; else it is refused as unreadable."""
        try:
            return msgspec.convert(msgspec.to_builtins(self), Notification)
        except msgspec.ValidationError as exc:
            raise NotificationRejected("bad_body", f"a notification field is out of bounds: {exc}") from None


def channel_time(value: str | None, *, default_tz: tzinfo | None = None) -> datetime | None:
    """A channel's time as it wrote it (ISO 8601; without an offset, in ``default_tz``), in UTC; None when
    it tells none or nothing readable (the booking time is used then: the money is real either way)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            if default_tz is None:
                return None
            when = when.replace(tzinfo=default_tz)
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


class Reply(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    media_type: str


# A channel's name: the notify route's last segment, the ledger's ``channel:<name>`` account, and (upper
# case) its settings' prefix
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,15}\Z"
ChannelName = Annotated[str, Meta(min_length=1, max_length=16, pattern=NAME_PATTERN)]
# a stored callback of this form: an immediate answer a channel gives (headers, raw body), verified
# like any notification
Callback = tuple[dict[str, str], bytes]


class Capability(StrEnum):
    """What the payment centre may ask of a channel beyond taking its notifications (every channel
    verifies its callbacks and starts payments)."""

    # the platform asks the channel for refunds (:meth:`Channel.request_refund`); without it a refund
    # request is refused (503 channel_refund_unavailable) before anything is written, and refunds made
    # at the channel's own console still arrive as its notifications
    REFUNDS = "refunds"
    # charges a deferred order against the citizen's payment agreement (:meth:`Channel.charge_agreement`)
    DEFERRED_CHARGE = "deferred_charge"
    # has a payment page on this service (the web faces' /sandbox/pay/{id}), paid through
    # :meth:`Channel.pay_on_page`
    PAY_PAGE = "pay_page"
    # the channel answers what became of a payment or a refund (:meth:`Channel.query_payment`,
    # :meth:`Channel.query_refund`): a notification that never came is recovered by asking, and a
    # refund the channel answered "processing" is asked about until it ends
    QUERY = "query"
    # the channel's trade is closed there when our order closes (:meth:`Channel.close_payment`), so a
    # citizen can no longer pay an order we no longer take
    CLOSE = "close"
    # the channel publishes a daily statement we download (:meth:`Channel.download_bill`) and
    # reconcile automatically once it is out (:attr:`Channel.bill_ready_at`)
    BILLS = "bills"


class Channel(ABC):
    name: ClassVar[str]
    title_zh: ClassVar[str] = ""  # its name as a Chinese text writes it (微信支付); the name when empty
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    # False for a channel that moves no real money (the sandbox): refused when SHENGSHI_ENV=prod
    for_production: ClassVar[bool] = True

    @property
    def requests_refunds(self) -> bool:
        """Whether this deployment can ask the channel for refunds (``request_refund``)."""
        return Capability.REFUNDS in self.capabilities

    @abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> list[Notification]:
        """Verify the callback over the raw bytes and parse it; raise NotificationRejected."""

    @abstractmethod
    def success(self) -> Reply: ...

    @abstractmethod
    def failure(self, message: str, status: int = 400) -> Reply: ...

    @abstractmethod
    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        """What the citizen's app needs to pay this order in this channel: ``order_ref``, ``amount``,
        ``description``, ``expires_at`` (UTC, the order's payment window: the channel's trade expires
        with it), ``method`` (one of :attr:`pay_methods`) and, for a method that needs one, ``payer``
        (WeChat JSAPI: the citizen's openid under our WeChat app id). Asking twice for one order and
        method gives a payment of the same trade (the channel's idempotency on out_trade_no)."""

    async def request_refund(
        self, refund: dict[str, Any]
    ) -> tuple[dict[str, str], bytes] | list[Notification] | None:
        """Ask the channel to refund (``refund_ref`` is the channel's out_refund_no, so asking twice
        refunds once; ``order_ref``, ``amount``, ``total`` the order's amount, ``channel_txn`` the
        payment's transaction, ``reason``). A channel that confirms by a later callback (or answered
        "processing") returns None or []; one whose answer already says the refund succeeded returns
        it as notifications (or, like the sandbox, a callback to verify). An :class:`AppError` means
        the channel refused before doing anything; :func:`channel_busy` (or any other exception)
        leaves the outcome unknown, and the refund stays pending to be asked again."""
        raise refund_unavailable(self.name)

    async def charge_agreement(self, order: dict[str, Any]) -> Callback | list[Notification]:
        """(:attr:`Capability.DEFERRED_CHARGE`) Charge an order (``order_ref``, ``amount``,
        ``description``, and ``agreement_no``: the citizen's agreement with this channel, when it has
        one) against the citizen's agreement, once per order; returns the channel's callback
        confirming it, or the payment as notifications when the channel's answer says it is paid
        (none while the channel is still processing it: its notification or a query completes it)."""
        raise ServiceUnavailable(
            f"{self.name} does not charge payment agreements; the citizen pays the order in the app instead",
            code="agreement_unavailable",
        )

    # (BILLS) when the channel's statement for a day is out: this time (China time) on the next day
    bill_ready_at: ClassVar[time] = time(10, 0)
    # the ways the citizen's app (or a till) can pay in this channel: the ``method`` of start_payment,
    # the first being the default (WeChat: app, jsapi, native; Alipay: app, page, precreate)
    pay_methods: ClassVar[tuple[str, ...]] = ("app",)

    async def query_payment(self, order: dict[str, Any]) -> list[Notification]:
        """(:attr:`Capability.QUERY`) What the channel says of the trade for ``order_ref``: a ``payment``
        notification when it is paid, a ``closed`` one when the channel closed it, none while it is
        unpaid or the channel has no such trade. Each carries a ``notify_id`` fixed by the fact
        (``query:<transaction id>``), so asking twice applies once, and a payment told both by its
        notification and by a query is one payment (the payment centre matches its transaction)."""
        return []

    async def query_refund(self, refund: dict[str, Any]) -> list[Notification]:
        """(:attr:`Capability.QUERY`) What became of refund ``refund_ref`` of ``order_ref``: a
        ``refund`` notification when it succeeded, ``refund_failed`` when it was closed or could not
        be paid out, none while it is still processing."""
        return []

    async def close_payment(self, order: dict[str, Any]) -> None:
        """(:attr:`Capability.CLOSE`) Close the channel's trade for ``order_ref`` so it can no longer be
        paid. A trade already closed, or never opened there, is closed already: success. A trade the
        channel says is paid raises Conflict (code ``channel_trade_paid``): the payment centre then
        queries it, and the payment is applied (or booked as an overpayment)."""
        return None

    async def download_bill(self, day: date) -> Statement:
        """(:attr:`Capability.BILLS`) The channel's trade statement for ``day`` (its business day, China
        time), downloaded as the channel publishes it and parsed. Raises ServiceUnavailable (code
        ``bill_not_ready``) before the channel has it, and (code ``bill_invalid``) for a file the channel
        published that cannot be used (not its format, or its rows do not add up to its own totals:
        operators are told, and it is fetched again); a day with no trade is an empty statement."""
        raise ServiceUnavailable(f"{self.name} publishes no statement", code="bill_not_ready")

    async def pay_on_page(self, order: dict[str, Any]) -> Callback:
        """(:attr:`Capability.PAY_PAGE`) The citizen paid on this channel's page (``order_ref``,
        ``amount``): the channel's callback for it (the same payment if paid twice)."""
        raise NotFound(f"{self.name} has no payment page", code="channel_not_enabled")


class StatementRow(msgspec.Struct, frozen=True):
    """One movement of money on a channel's statement (its trade bill), as reconciliation reads it."""

    txn_id: str  # the channel's transaction id (a refund's: its refund id)
    order_id: str  # our order (out_trade_no), as the channel knows it
    type: Literal["payment", "refund"]
    amount: Annotated[int, Meta(ge=0)]  # fen, positive for both types
    refund_ref: str = ""  # our refund id (out_refund_no) for a refund
    fee: int = 0  # the channel's fee on this row (fen), as the bill states it
    channel_time: Annotated[datetime, Meta(tz=True)] | None = None  # when the money moved, UTC
    merchant: str = ""  # the channel's merchant or sub-merchant id on the row


class Statement(msgspec.Struct, frozen=True):
    """A channel's statement for one business day (China time), parsed from the file it published."""

    channel: str
    day: date
    rows: list[StatementRow]
    # the bill's own totals line (count, payments, refunds, fees in fen), to check the parse against
    totals: dict[str, int] = msgspec.field(default_factory=dict)
    raw: bytes = b""  # the file as downloaded (kept for the operators and the auditors)
    media_type: str = "text/csv"


# What a channel call may answer besides the success it hopes for:
# - an :class:`AppError` (InvalidInput, Conflict, NotFound, ...) when the channel refused before doing
#   anything (a bad request, an order it does not know): the caller may change and try again;
# - :func:`channel_busy` (a ServiceUnavailable, code ``channel_unavailable``) when the channel could not
#   be reached, timed out, answered 5xx or SYSTEM_ERROR, or answered with a signature that does not
#   verify: the outcome is unknown, and the same call (same out_trade_no / out_refund_no) is retried.
def channel_busy(channel: str, detail: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"{channel} did not answer usably ({detail}); the same call is tried again",
        code="channel_unavailable",
        channel=channel,
    )


@dataclass(frozen=True)
class ChannelContext:
    """What the platform gives every channel it builds."""

    name: str
    public_url: str  # the service's base URL, no trailing slash
    notify_url: str  # where the channel sends its notifications: {public_url}/api/v1/payments/notify/<name>
    now: Callable[[], float]  # the clock, Unix seconds
    # 32 bytes derived from the platform's secret for this channel alone (a channel that signs its own
    # callbacks, like the sandbox, needs no key of its own)
    derived_key: bytes = field(repr=False)
    env: str = "dev"  # dev, test or prod (SHENGSHI_ENV)


S = TypeVar("S", bound=msgspec.Struct)


class SettingsProblem(Exception):
    """Raised by a channel's ``build`` (or its settings' ``check``) for a value it cannot use: each
    argument is one problem, naming its variable. Start-up lists them with every other bad setting."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ChannelPlugin(Generic[S]):
    """What a channel package declares through the ``shengshitong.payment_channels`` entry point."""

    channel: type[Channel]
    # its settings: each field is SHENGSHI_<NAME>_<FIELD> (a field with no default is required)
    settings: type[S]
    build: Callable[[S, ChannelContext], Channel]
    # settings fields whose values are never shown (in start-up errors, logs or dumps)
    secret_settings: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.channel.name

    @property
    def env_prefix(self) -> str:
        return f"SHENGSHI_{self.name.upper()}_"


class NoSettings(msgspec.Struct, frozen=True):
    """The settings of a channel that has none."""

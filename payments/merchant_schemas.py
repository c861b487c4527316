"""Request and response bodies of the merchants' API and of the pay code (付款码)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from payments.schemas import Fen, Order, Reference

# a label a person reads: no control characters (PostgreSQL refuses NUL in text)
Label = Annotated[str, Meta(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*\Z")]


# ---- the till ------------------------------------------------------------------------------------------
class PayCodeScan(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, Meta(min_length=1, max_length=2048)]  # the scanned citizen code, as read
    amount: Fen
    reference: Reference  # the till's own reference: a retry with it never charges twice
    description: Label = ""


class PayCodePayment(msgspec.Struct):
    """A payment taken by code, as the till shows it."""

    result: str  # paid | deferred | confirm_required | pending | declined | expired | failed
    order_id: str
    reference: str
    amount: int
    method: str  # credit | a channel
    order_state: str
    confirmation_id: str | None  # while it waits for the citizen
    confirm_by: datetime | None
    reason: str  # why it failed (a channel's code, paycode_credit_limit)


# ---- the citizen ---------------------------------------------------------------------------------------
class PayCodeSettingsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool
    method: Annotated[str, Meta(max_length=16)] = ""  # credit, or a channel (sandbox, alipay)
    limit: Annotated[int, Meta(ge=1, le=100_000_000)] | None = None  # fen per payment without confirming


class Agreement(msgspec.Struct):
    channel: str
    state: str  # signed | ended
    signed_at: datetime


class PayCodeSettings(msgspec.Struct):
    enabled: bool
    method: str
    limit: int  # fen per payment without a confirmation
    max_limit: int
    methods: list[str]  # what the code can pay with here
    agreements: list[Agreement]
    unpaid_total: int  # fen owed on deferred orders (credit included)
    credit_limit: int  # fen a citizen may owe on credit


class Confirmation(msgspec.Struct):
    confirmation_id: str
    amount: int
    description: str
    merchant_name: str | None
    method: str
    created_at: datetime
    confirm_by: datetime


class Confirmations(msgspec.Struct):
    items: list[Confirmation]


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    decision: Literal["approve", "decline"]


# ---- the merchant --------------------------------------------------------------------------------------
class OrderPage(msgspec.Struct):
    items: list[Order]
    next_offset: int | None
    next: str | None


class ChannelTotals(msgspec.Struct):
    paid_count: int
    paid_amount: int
    refunded_amount: int
    net: int


class SettlementDay(msgspec.Struct):
    day: str  # YYYY-MM-DD, China time
    paid_count: int
    paid_amount: int
    refunded_amount: int
    net: int
    by_channel: dict[str, ChannelTotals]


class Settlement(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str = ""
    days: list[SettlementDay] = msgspec.field(default_factory=list)


class TillCreate(msgspec.Struct, forbid_unknown_fields=True):
    place: Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+\Z")]  # "counter 2"
    name: Label = ""


class TillCreated(msgspec.Struct):
    """A till's credential: the secret is shown this once."""

    client_id: str
    client_secret: str
    kind: str
    name: str
    app_id: str  # the merchant's client id
    place: str
    context: str  # pay


class Till(msgspec.Struct):
    client_id: str
    name: str
    place: str
    context: str
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None


class Tills(msgspec.Struct):
    items: list[Till]

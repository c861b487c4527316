"""Request and response bodies of the payment centre API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from payments.channels.base import ChannelName

Reference = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+\Z")]
Fen = Annotated[int, Meta(gt=0, le=100_000_000)]


class OrderCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reference: Reference
    amount: Fen
    description: Annotated[str, Meta(max_length=128)] = ""
    openid: Annotated[str, Meta(max_length=64)] | None = None  # the citizen, as the mini-app knows them
    deferred: bool = False  # charged later against the citizen's payment agreement


class RefundOut(msgspec.Struct):
    refund_id: str
    amount: int
    state: str  # pending succeeded failed abnormal
    reason: str
    failure: str  # the channel's word for a failed or abnormal refund (CLOSED, ABNORMAL)
    created_at: datetime
    succeeded_at: datetime | None
    failed_at: datetime | None


class OverpaymentOut(msgspec.Struct):
    """A payment the order did not need (a second one, or one after it closed): held until refunded."""

    overpayment_id: str
    channel: str
    amount: int
    refunded: int  # fen refunded so far (a channel's console may refund it in parts)
    reason: str  # already_paid | order_closed
    state: str  # to_refund | refunded (all of it)
    created_at: datetime
    refunded_at: datetime | None  # when all of it was


class PayLink(msgspec.Struct):
    """For an order without a citizen: the till shows ``uri`` as a QR code; the citizen's app opens it
    (``url`` is the same link over https) and pays, becoming the order's citizen."""

    uri: str
    url: str


class Order(msgspec.Struct):
    order_id: str
    reference: str
    app_id: str
    owner: str
    amount: int
    currency: str
    state: str
    deferred: bool
    channel: str
    refunded: int
    description: str
    created_at: datetime
    paid_at: datetime | None
    closed_at: datetime | None
    expires_at: datetime | None
    refunds: list[RefundOut]
    overpayments: list[OverpaymentOut]
    pay_link: PayLink | None
    merchant_name: str | None = None  # whom the citizen pays, for a merchant's order


class PaymentChannels(msgspec.Struct):
    """The channels this deployment takes payments through, in the configured order
    (``SHENGSHI_PAYMENT_CHANNELS``): what a citizen's app or the web wallet offers."""

    channels: list[str]


class PayRequest(msgspec.Struct, forbid_unknown_fields=True):
    # one of the enabled channels (GET /api/v1/payments/channels); another name is 422 unknown_channel
    channel: ChannelName
    # how the citizen pays there (the channel's pay methods, e.g. WeChat Pay app / jsapi / native, Alipay
    # app / page / precreate); the channel's first when omitted; another is 422 unknown_pay_method
    method: Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[a-z_]+\Z")] | None = None
    # who pays, where the method needs it (WeChat Pay JSAPI: the citizen's openid under our WeChat app)
    payer: Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+\Z")] | None = None


class RefundCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reference: Reference
    amount: Fen
    reason: Annotated[str, Meta(max_length=128)] = ""


class RefundAccepted(msgspec.Struct):
    refund_id: str
    amount: int
    state: str

"""Request and response bodies of the non-tax fee API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

Reference = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+\Z")]
Fen = Annotated[int, Meta(gt=0, le=100_000_000)]
NoticeNo = Annotated[str, Meta(min_length=20, max_length=20, pattern=r"^[0-9]{20}\Z")]


class NoticeCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reference: Reference  # the department's own: the same reference again is the same notice
    # 收费项目编码
    item_code: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+\Z")]
    item_name: Annotated[str, Meta(min_length=1, max_length=64)]
    amount: Fen
    payer_name: Annotated[str, Meta(min_length=1, max_length=64)]
    # who pays, by one of: resident ID number (18 characters) or mainland mobile number
    payer_id_number: Annotated[str, Meta(min_length=1, max_length=32)] | None = None
    payer_phone: Annotated[str, Meta(min_length=1, max_length=20)] | None = None
    due_date: date  # China time; paying on it is on time
    # 滞纳金: a day past the due date adds this many ten-thousandths of the amount (3‰ a day = 30), up
    # to the amount itself
    late_fee_bp: Annotated[int, Meta(ge=0, le=100)] = 0
    description: Annotated[str, Meta(max_length=128)] = ""


class Notice(msgspec.Struct):
    """A notice as its department sees it (the payer masked: the full name and number are never shown)."""

    notice_no: str
    reference: str
    department: str
    department_name: str
    item_code: str
    item_name: str
    amount: int
    late_fee_bp: int
    due_date: str
    description: str
    payer_name: str
    payer: str  # the masked ID number or phone
    payer_known: bool  # a citizen of the platform was told in the inbox
    state: str  # open | paid | cancelled
    late_fee: int  # paid: the late fee paid; open: today's
    amount_due: int  # paid: what was paid; open: what paying today costs
    order_id: str | None
    channel: str
    paid_at: datetime | None
    receipt_no: str  # 电子票据号, once the fiscal system answered with one
    created_at: datetime
    cancelled_at: datetime | None


class PublicNotice(msgspec.Struct):
    """A notice as a citizen who has its number sees it."""

    notice_no: str
    department_name: str
    item_code: str
    item_name: str
    amount: int
    late_fee: int
    amount_due: int
    payer_name: str  # masked
    due_date: str
    description: str
    state: str
    paid_at: datetime | None
    receipt_no: str


class NoticePage(msgspec.Struct):
    items: list[Notice]
    next_offset: int | None
    next: str | None


class ReconcileRequest(msgspec.Struct, forbid_unknown_fields=True):
    date: date
    csv: Annotated[str, Meta(min_length=1, max_length=5_000_000)]  # the fiscal system's day file


class PayPayload(msgspec.Struct):
    notice_no: str
    order_id: str
    channel: str
    amount: int
    late_fee: int
    pay: dict[str, object]

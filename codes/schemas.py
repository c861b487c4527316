"""Request and response bodies of the citizen-code and scan API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

Token = Annotated[str, Meta(min_length=1, max_length=2048)]
Meta_ = Annotated[
    dict[Annotated[str, Meta(max_length=32)], Annotated[str, Meta(max_length=64)]], Meta(max_length=8)
]
RecordId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class CurrentCode(msgspec.Struct):
    token: str
    issued_at: datetime
    expires_at: datetime
    refresh_after: datetime
    entitlements: dict[str, Any]
    kid: str


class ScanRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: Token
    scanned_at: Annotated[int, Meta(ge=0)] | None = None
    record_id: RecordId | None = None
    meta: Meta_ = msgspec.field(default_factory=dict)  # e.g. the licence plate a barrier camera read


class ScanDisplay(msgspec.Struct):
    color: str
    title: str
    subtitle: str


class ScanResult(msgspec.Struct):
    result: str  # allow | deny
    reason: str
    app_id: str
    context: str
    record_id: str
    flagged: bool
    display: ScanDisplay
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class BatchRecord(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    record_id: RecordId
    token: Token
    scanned_at: Annotated[int, Meta(ge=0)]
    meta: Meta_ = msgspec.field(default_factory=dict)


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    records: Annotated[list[BatchRecord], Meta(min_length=1, max_length=500)]


class BatchResult(msgspec.Struct):
    results: list[ScanResult]

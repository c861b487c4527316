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
# Unix seconds up to 2100-01-01: a time beyond any code's life is refused as a bad body, not computed with
ScanTime = Annotated[int, Meta(ge=0, le=4_102_444_800)]


class CurrentCode(msgspec.Struct):
    token: str
    issued_at: datetime
    expires_at: datetime
    refresh_after: datetime
    entitlements: dict[str, Any]
    kid: str
    # the QR of ``token`` as an SVG document, when asked for (``?qr=svg``): one request gives a web
    # wallet the code and its picture, which cannot differ
    qr_svg: str | None = None
    # the server's clock when answering, so a device with a wrong clock still counts down correctly
    server_time: datetime | None = None


class ScanRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: Token
    # when the gate read the code (its clock); an online scan must come within the code's validity
    scanned_at: ScanTime | None = None
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
    scanned_at: ScanTime
    meta: Meta_ = msgspec.field(default_factory=dict)


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    records: Annotated[list[BatchRecord], Meta(min_length=1, max_length=500)]


class BatchResult(msgspec.Struct):
    results: list[ScanResult]

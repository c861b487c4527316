"""Request and response bodies of the mini-app platform API and of the gate (scans)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from miniapps.contract import Display

Token = Annotated[str, Meta(min_length=1, max_length=2048)]
Meta_ = Annotated[
    dict[Annotated[str, Meta(max_length=32)], Annotated[str, Meta(max_length=64)]], Meta(max_length=8)
]
RecordId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
# Unix seconds up to 2100-01-01: a time beyond any code's life is refused as a bad body, not computed with
ScanTime = Annotated[int, Meta(ge=0, le=4_102_444_800)]


class CatalogueEntry(msgspec.Struct):
    id: str
    name_zh: str
    name_en: str
    version: str
    description: str  # in the request's language (Accept-Language, zh-CN by default)
    description_zh: str
    description_en: str
    scopes: list[str]
    entitlements: list[str]
    scan_contexts: dict[str, str | None]


class Catalogue(msgspec.Struct):
    items: list[CatalogueEntry]
    next_offset: int | None
    next: str | None = None  # the next page's URL (backend/pagination.py)


class AuthorizeRequest(msgspec.Struct, forbid_unknown_fields=True):
    scopes: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(max_length=10)] = msgspec.field(
        default_factory=lambda: ["openid"]
    )


class AuthorizeResult(msgspec.Struct):
    code: str
    expires_in: int
    scopes: list[str]


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, Meta(min_length=1, max_length=128)]


class TokenResult(msgspec.Struct):
    openid: str
    scopes: list[str]
    access_token: str
    token_type: str
    expires_in: int


class Grant(msgspec.Struct):
    app_id: str
    scopes: list[str]
    scope_descriptions: dict[str, str]
    created_at: datetime
    updated_at: datetime


class GrantPage(msgspec.Struct):
    items: list[Grant]
    next_offset: int | None
    next: str | None = None  # the next page's URL (backend/pagination.py)


class ScanRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: Token
    # when the gate read the code (its clock); an online scan must come within the code's validity
    scanned_at: ScanTime | None = None
    record_id: RecordId | None = None
    meta: Meta_ = msgspec.field(default_factory=dict)  # e.g. the licence plate a barrier camera read


class ScanResult(msgspec.Struct):
    result: str  # allow | deny
    reason: str
    app_id: str
    context: str
    record_id: str
    flagged: bool
    display: Display
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


class ScanHistoryItem(msgspec.Struct):
    scanned_at: datetime
    app_id: str
    app_name_zh: str
    app_name_en: str
    place: str
    context: str
    result: str
    reason: str
    offline: bool


class ScanHistoryPage(msgspec.Struct):
    items: list[ScanHistoryItem]
    next_offset: int | None
    next: str | None = None  # the next page's URL (backend/pagination.py)

"""Request and response bodies of the mini-app platform API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta


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

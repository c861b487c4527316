"""The e-licence centre's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

TypeCode = Annotated[str, Meta(min_length=2, max_length=32, pattern=r"^[a-z_]+$")]
FieldName = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]
FieldValue = Annotated[str, Meta(max_length=512)] | None
Reason = Annotated[str, Meta(max_length=200)]
Compact = Annotated[str, Meta(min_length=20, max_length=16384)]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


# ---- issuers ---------------------------------------------------------------------------------------
class LicenceIssue(Strict):
    type: TypeCode
    id_number: Annotated[str, Meta(min_length=15, max_length=18)]  # the holder's, as the issuer knows it
    fields: Annotated[dict[FieldName, FieldValue], Meta(max_length=32)]
    valid_until: datetime | None = None


class LicenceUpdate(Strict):
    fields: Annotated[dict[FieldName, FieldValue], Meta(max_length=32)] = msgspec.field(default_factory=dict)
    valid_until: datetime | None = None


class StatusChange(Strict):
    reason: Reason = ""


class IssuedView(msgspec.Struct):
    id: str
    type: str
    status: str  # valid | suspended | revoked
    reason: str
    version: int
    number: str  # masked where it is personal
    valid_until: datetime | None
    issued_at: datetime
    updated_at: datetime


# ---- operators -------------------------------------------------------------------------------------
class IssuerCreate(Strict):
    code: Annotated[str, Meta(min_length=2, max_length=32, pattern=r"^[a-z][a-z0-9-]+$")]
    name_zh: Annotated[str, Meta(min_length=1, max_length=64)]
    name_en: Annotated[str, Meta(min_length=1, max_length=96)]
    department: Annotated[str, Meta(min_length=2, max_length=32)]
    types: Annotated[list[TypeCode], Meta(min_length=1, max_length=16)]


class IssuerView(msgspec.Struct):
    code: str
    name_zh: str
    name_en: str
    department: str
    department_zh: str
    department_en: str
    types: list[str]
    client_id: str
    status: str
    created_at: datetime
    revoked_at: datetime | None
    client_secret: str | None = None  # once, when it is created


# ---- citizens --------------------------------------------------------------------------------------
class LicenceSummary(msgspec.Struct):
    id: str
    type: str
    name_zh: str
    name_en: str
    issuer: str
    issuer_zh: str
    issuer_en: str
    number: str
    status: str
    valid_until: datetime | None
    issued_at: datetime
    version: int


class LicenceList(msgspec.Struct):
    verified: bool  # false: real-name verification first (licences reach verified accounts only)
    items: list[LicenceSummary]


class FieldView(msgspec.Struct):
    name: str
    zh: str
    en: str
    value: str


class DeviceView(msgspec.Struct):
    device_jkt: str
    minted_at: datetime
    expires_at: datetime


class LicenceView(LicenceSummary):
    reason: str
    fields: list[FieldView]
    devices: list[DeviceView]


class NonceView(msgspec.Struct):
    c_nonce: str
    expires_in: int
    audience: str  # the ``aud`` of the proof


class CredentialRequest(Strict):
    proof: Compact  # a JWT (typ openid4vci-proof+jwt) signed by the device key over our nonce


class CredentialView(msgspec.Struct):
    format: str
    vct: str
    credential: str
    device: str  # the device key's RFC 7638 thumbprint
    expires_at: datetime
    version: int


class ShowRequest(Strict):
    presentation: Compact
    handover: bool = False  # true: always hand over by reference (the inspector is online)


class ShowView(msgspec.Struct):
    mode: str  # inline | reference
    qr: str  # what the QR holds: the presentation, or SSTL1:<url of the one-time reference>
    qr_version: int
    qr_png: str  # data:image/png;base64,... (ECC L, 4 px a module)
    fields: list[str]
    expires_in: int


class HandoverView(msgspec.Struct):
    presentation: str
    audience: str


class Label(msgspec.Struct):
    name: str
    zh: str
    en: str


class RequesterView(msgspec.Struct):
    kind: str
    id: str
    name: str


class RequestView(msgspec.Struct):
    id: str
    requester: RequesterView
    type: str
    type_zh: str
    type_en: str
    fields: list[Label]
    purpose: str
    mode: str  # once | standing
    state: str  # pending | approved | refused | expired | used | revoked
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    consent_until: datetime | None
    used_at: datetime | None


class RequestPage(msgspec.Struct):
    items: list[RequestView]
    next_offset: int | None
    next: str | None


class Approval(Strict):
    licence: str | None = None  # which of my licences of the type (default: the latest valid one)


class UseView(msgspec.Struct):
    id: str
    at: datetime
    licence: str | None
    type: str
    type_zh: str
    type_en: str
    kind: str  # shown | handover | shared
    by_kind: str  # self | inspector | miniapp | relying_party
    by_id: str
    by_name: str
    fields: list[Label]
    purpose: str
    request: str | None


class UsePage(msgspec.Struct):
    items: list[UseView]
    next_offset: int | None
    next: str | None


# ---- requesters ------------------------------------------------------------------------------------
class FieldsRequest(Strict):
    type: TypeCode
    fields: Annotated[list[FieldName], Meta(min_length=1, max_length=32)]
    purpose: Annotated[str, Meta(min_length=2, max_length=200)]
    mode: Literal["once", "standing"] = "once"
    standing_days: Annotated[int, Meta(ge=1, le=365)] | None = None
    openid: Annotated[str, Meta(min_length=1, max_length=64)] | None = None  # a mini-app's user
    id_number: Annotated[str, Meta(min_length=15, max_length=18)] | None = None  # a relying party's
    key: Annotated[str, Meta(min_length=1, max_length=64)] | None = None  # idempotency


class SharedView(msgspec.Struct):
    request: str
    format: str
    vct: str
    presentation: str
    fields: dict[str, Any]
    expires_at: datetime


# ---- public ----------------------------------------------------------------------------------------
class TypeField(msgspec.Struct):
    name: str
    zh: str
    en: str
    required: bool
    kind: str


class TypeView(msgspec.Struct):
    code: str
    vct: str
    zh: str
    en: str
    department: str
    fields: list[TypeField]

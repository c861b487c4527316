"""Request and response bodies of the identity API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

Phone = Annotated[str, Meta(min_length=5, max_length=32, description="mainland mobile number")]
DeviceId = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class OtpRequest(Strict):
    phone: Phone


class OtpSent(msgspec.Struct):
    status: str
    expires_in: int
    resend_after: int


class LoginRequest(Strict):
    phone: Phone
    code: Annotated[str, Meta(pattern=r"^\d{6}$")]
    device_id: DeviceId
    device_name: Annotated[str, Meta(max_length=128)] = ""


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Meta(min_length=10, max_length=256)]


class TokenPairOut(msgspec.Struct):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    refresh_expires_in: int


RealName = Annotated[str, Meta(min_length=1, max_length=64)]
IdNumber = Annotated[str, Meta(min_length=18, max_length=18)]


class RealNameVerification(msgspec.Struct):
    """Who verified the real name, how far (``two_factor``: name + ID number; ``face``: and liveness),
    and when."""

    provider: str
    level: str
    verified_at: datetime


class Profile(msgspec.Struct):
    id: str
    phone: str
    real_name: str | None
    id_number: str | None
    real_name_verified: bool
    real_name_verification: RealNameVerification | None
    status: str
    created_at: datetime
    district: str = ""  # a Shenyang district code the citizen chose ("" none)


class Liveness(Strict):
    """The result token the face-verification SDK gave the app (the provider resolves it itself: a score
    the app reported would prove nothing)."""

    token: Annotated[str, Meta(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9._:/+=-]+$")]


class ProfileUpdate(Strict):
    """Real name and ID number are verified before they are kept (as ``RealNameVerificationCreate``);
    one left out is the verified one on file."""

    real_name: RealName | UnsetType = UNSET
    id_number: IdNumber | UnsetType = UNSET
    liveness: Liveness | UnsetType = UNSET
    # where the citizen lives (a Shenyang district's code, see GET /api/v1/districts); "" clears it
    district: Annotated[str, Meta(pattern=r"^([0-9]{6})?$")] | UnsetType = UNSET


class RealNameVerificationCreate(Strict):
    real_name: RealName
    id_number: IdNumber
    liveness: Liveness | None = None


class DeviceOut(msgspec.Struct):
    device_id: str
    name: str
    created_at: datetime
    last_seen_at: datetime
    current: bool


class DevicePage(msgspec.Struct):
    items: list[DeviceOut]
    next_offset: int | None
    next: str | None = None  # the next page's URL (backend/pagination.py)


class DevSms(msgspec.Struct):
    phone: str
    text: str
    sent_at: str

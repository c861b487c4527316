"""The message centre's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from messages._announce import Segment
from messages.templates import TemplateId


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class MessageView(msgspec.Struct):
    id: str
    sender: str  # a mini-app's id, or "platform"
    template_id: str
    category: str  # transactional | reminder | announcement
    urgent: bool
    title: str  # in the request's language
    body: str
    link: str
    at: datetime
    read: bool


class MessagePage(msgspec.Struct):
    items: list[MessageView]
    next_offset: int | None
    next: str | None
    unread: int


class Unread(msgspec.Struct):
    unread: int


class DeliveryEntry(msgspec.Struct):
    channel: str  # inbox | live | webpush | sms
    state: str  # stored | published | due | pending | sent | skipped | dead | cancelled
    at: datetime | None
    attempts: int
    error: str


class ConsentUpdate(Strict, kw_only=True):
    mode: Literal["once", "standing"]


class Consent(msgspec.Struct):
    template_id: str
    standing: bool
    once_left: int
    title: str = ""  # the template's title in the request's language
    description: str = ""


# max_length too: "$" matches before a final newline, and "22:00\n" does not fit the column (a 500 on
# PostgreSQL; SQLite kept it)
HourMinute = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", max_length=5)]


class ChannelChoice(Strict, kw_only=True):
    inbox: bool = True
    webpush: bool = True
    sms: bool = True


class PreferencesBody(Strict, kw_only=True):
    """Channels per category (``transactional``'s inbox cannot be turned off; SMS is only ever used for
    urgent transactional messages) and quiet hours in China time."""

    channels: dict[Literal["transactional", "reminder", "announcement"], ChannelChoice] = msgspec.field(
        default_factory=dict
    )
    quiet: bool = True
    quiet_start: HourMinute = "22:00"
    quiet_end: HourMinute = "08:00"


class PushKeys(Strict, kw_only=True):
    p256dh: Annotated[str, Meta(min_length=80, max_length=100, pattern=r"^[A-Za-z0-9_\-]+=*$")]
    auth: Annotated[str, Meta(min_length=16, max_length=32, pattern=r"^[A-Za-z0-9_\-]+=*$")]


class PushSubscriptionCreate(msgspec.Struct, kw_only=True):
    """A browser's ``PushSubscription.toJSON()`` as it comes (``expirationTime`` is accepted and ignored)."""

    endpoint: Annotated[str, Meta(min_length=12, max_length=1024)]
    keys: PushKeys
    expirationTime: int | None = None


class PushSubscriptionView(msgspec.Struct):
    id: str
    host: str
    created_at: datetime
    last_ok_at: datetime | None = None
    gone: bool = False


class PushKey(msgspec.Struct):
    application_server_key: str  # for PushManager.subscribe({applicationServerKey})
    enabled: bool


class NotifyBody(Strict, kw_only=True):
    """A mini-app's backend sends one message by its template's name (``transit`` sends
    ``fare_deferred``, not ``transit.fare_deferred``)."""

    openid: Annotated[str, Meta(min_length=1, max_length=64)]
    template: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{1,47}$")]
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    # what makes it once; URL-safe characters, so the same key withdraws it (DELETE /api/v1/messages/{key})
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=160, pattern=r"^[A-Za-z0-9._:~\-]+$")]
    at: datetime | None = None  # show it then (a reminder), up to 60 days ahead; None: now


class NoticeView(msgspec.Struct):
    outcome: str  # sent | scheduled | duplicate | skipped
    message_id: str | None = None
    reason: str = ""  # for skipped: not_subscribed | opted_out | daily_cap | unknown_citizen


class Cancelled(msgspec.Struct):
    cancelled: bool


class TemplateView(msgspec.Struct):
    template_id: str
    owner: str
    category: str
    status: str  # pending | approved | rejected | suspended
    usable: bool
    declared: dict[str, Any]
    in_use: bool
    decided_by: str
    decided_at: datetime | None
    note: str


class TemplateDecision(Strict, kw_only=True):
    decision: Literal["approve", "reject", "suspend"]
    note: Annotated[str, Meta(max_length=256)] = ""


class AnnouncementCreate(Strict, kw_only=True):
    template: TemplateId
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    segment: Segment
    rate: Annotated[int, Meta(ge=1, le=100_000)] = 2000


class AnnouncementView(msgspec.Struct):
    id: str
    template_id: str
    segment: dict[str, Any]
    state: str  # sending | cancelled | done
    rate: int
    scanned: int
    sent: int
    skipped: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str


class AnnouncementPage(msgspec.Struct):
    items: list[AnnouncementView]
    next_offset: int | None
    next: str | None

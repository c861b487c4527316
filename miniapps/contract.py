"""The mini-app contract: everything a mini-app may know of the platform, and the platform of it.

A mini-app is a Python package that declares a :class:`Manifest` and subclasses :class:`MiniApp`. It is
found through the ``shengshitong.miniapps`` entry-point group and enabled by ``SHENGSHI_MINIAPPS``.
This module is its one face of the platform: a mini-app imports nothing else of it (not ``backend``,
``auth``, ``payments``, nor another mini-app; ``tests/unit/miniapps/test_contract_only.py`` checks), only
third-party libraries (Litestar, Piccolo, msgspec) and its own modules. It gets the rest through the
:class:`Platform` handed to it, and answers the platform through the methods of :class:`MiniApp`.

What the platform offers here, besides the types of a scan and a payment:

- errors: :class:`AppError` and its kinds (:class:`InvalidInput` 422, :class:`Forbidden` 403,
  :class:`NotFound` 404, :class:`Conflict` 409, ...), the platform's one hierarchy, answered as
  problem+json like every other route's: ``raise Conflict("...", code="sold_out")``;
- pagination, the one convention of every list: ``limit: Limit = DEFAULT_LIMIT, offset: Offset = 0``,
  fetch ``limit + 1`` rows and answer :func:`page` (or :func:`window` of a list held in memory);
- the caller: the guard :func:`citizen_caller` and ``caller: NamedDependency[AppCaller]`` (the calling
  citizen's pairwise id for this app), the guard :func:`app_backend` for the app's own backend,
  :func:`requires` to say in the OpenAPI document what a guard of the app's own checks, and :func:`names`
  for a name in two languages;
- the transaction: ``async with self.platform.transaction():`` (:meth:`Platform.transaction`);
- demo data: :func:`upsert_by_code` and :func:`tally` for an idempotent ``seed_demo``;
- for terminals that decide offline: :meth:`Platform.find_citizen`,
  :meth:`Platform.seal` / :meth:`Platform.unseal`, :meth:`Platform.sign_document`, the guard
  :func:`scanner_caller` with ``scanner: NamedDependency[ScannerCaller]``, keyed claims in the code
  (:meth:`MiniApp.code_claims`) and the code's offline verifier, ``code_verifier``.

What a mini-app owns comes with it, so enabling one is a setting and never an edit of the platform:

- its tables and migrations: a Piccolo app of its own, named by :attr:`MiniApp.piccolo_app` (a module
  whose ``APP_CONFIG`` is a ``piccolo.conf.apps.AppConfig`` with ``app_name`` = the manifest's id, its
  table classes and its own migrations folder). ``shengshi migrate`` applies the platform's migrations,
  then each enabled mini-app's; the running app binds its tables to the platform's database engine.
- its settings: the manifest's ``settings_schema``, read from ``SHENGSHI_MINIAPP_<ID>``.
- its demo data: :meth:`MiniApp.seed_demo`, and the scanners the demo enrols for it,
  :attr:`MiniApp.demo_scanners` (``shengshi seed-demo``).
"""

from __future__ import annotations

import logging
import re
from abc import ABC
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Protocol

import msgspec
from msgspec import Meta

from backend.errors import (
    AppError,
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from backend.openapi import requires
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page, window
from backend.seed import tally, upsert_by_code
from codes import verifier as code_verifier  # the code's own verifier, for doors deciding offline
from messages.services import Notice
from messages.templates import Template as MessageTemplate
from miniapps.deps import AppCaller, ScannerCaller, app_backend, citizen_caller, names, scanner_caller
from ratings.rules import Rateable
from ratings.rules import Unit as RatingUnit

__all__ = [
    "CONTRACT_VERSION",
    "CONTRIBUTABLE",
    "DEFAULT_LIMIT",
    "ENTITLEMENTS",
    "SCOPES",
    "SCOPES_ZH",
    "AppCaller",
    "AppError",
    "AppId",
    "Conflict",
    "Contribution",
    "Display",
    "Effect",
    "Fast",
    "Forbidden",
    "Gauge",
    "Gone",
    "Identified",
    "InvalidInput",
    "Limit",
    "Manifest",
    "MessageTemplate",
    "MiniApp",
    "Name",
    "NotFound",
    "Note",
    "Notice",
    "Offset",
    "PastRating",
    "PaymentEvent",
    "Platform",
    "PrivacyBinding",
    "RateLimited",
    "Rateable",
    "RatingUnit",
    "ScanDecision",
    "ScanEvent",
    "Scanner",
    "ScannerCaller",
    "ServiceUnavailable",
    "Unauthorized",
    "app_backend",
    "citizen_caller",
    "code_verifier",
    "names",
    "page",
    "requires",
    "scanner_caller",
    "tally",
    "upsert_by_code",
    "window",
]

AppId = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9-]{1,31}$")]
Name = Annotated[str, Meta(min_length=1, max_length=64)]
CONTRACT_VERSION = 1
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,47}$")

# Scopes a mini-app may ask a citizen for. "openid" (the pairwise id) is always granted.
SCOPES = {
    "openid": "your pairwise id for this mini-app",
    "profile": "your masked name (张**) and whether you are real-name verified",
    "phone": "your mobile number",
    "id_number": "your real name and national ID number",
}
SCOPES_ZH = {
    "openid": "你在此小程序中的专属标识",
    "profile": "你的脱敏姓名（张**）及是否已实名认证",
    "phone": "你的手机号",
    "id_number": "你的真实姓名和身份证号码",
}
# Entitlements a scan context may require of the citizen code.
ENTITLEMENTS = ("medical", "transit", "health", "tickets", "social_security")
# Those a mini-app may contribute (one mini-app each); the others come only from the external systems
# that own them (the medical-insurance and social-security bureaus, the health authority).
CONTRIBUTABLE = ("transit", "tickets")


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: AppId
    name_zh: Name
    name_en: Name
    version: Annotated[str, Meta(pattern=r"^\d+\.\d+(\.\d+)?$")]
    scopes: list[str] = msgspec.field(default_factory=lambda: ["openid"])
    entitlements: list[str] = msgspec.field(default_factory=list)
    # scan context -> the entitlement it requires of the code (None: any valid code)
    scan_contexts: dict[str, str | None] = msgspec.field(default_factory=dict)
    # entitlements this mini-app contributes to the citizen code (see MiniApp.entitlement)
    contributes: list[str] = msgspec.field(default_factory=list)
    # messages it may send (Platform.notify), by name: used once an operator approved each one's text
    templates: dict[str, MessageTemplate] = msgspec.field(default_factory=dict)
    # services a citizen may rate (好差评), by name: recorded with Platform.rateable when one is had
    rateable: dict[str, Rateable] = msgspec.field(default_factory=dict)
    settings_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    description: str = ""  # English (kept for manifests written before the two below)
    description_zh: str = ""
    description_en: str = ""  # empty: ``description``
    contract: int = CONTRACT_VERSION

    def describe(self, locale: str) -> str:
        """The description in ``locale`` ("zh-CN" or "en"); the other language when one is missing."""
        en = self.description_en or self.description
        return (en or self.description_zh) if locale == "en" else (self.description_zh or en)

    def problems(self) -> list[str]:
        out = []
        if unknown := set(self.scopes) - set(SCOPES):
            out.append(f"unknown scopes {sorted(unknown)} (known: {sorted(SCOPES)})")
        if unknown := set(self.entitlements) - set(ENTITLEMENTS):
            out.append(f"unknown entitlements {sorted(unknown)} (known: {list(ENTITLEMENTS)})")
        for context, need in self.scan_contexts.items():
            if not context or len(context) > 64:
                out.append(f"bad scan context name {context!r}")
            if need is not None and need not in ENTITLEMENTS:
                out.append(f"scan context {context!r} requires unknown entitlement {need!r}")
        if wrong := set(self.contributes) - set(CONTRIBUTABLE):
            out.append(f"cannot contribute {sorted(wrong)} (a mini-app may contribute {list(CONTRIBUTABLE)})")
        for name, template in self.templates.items():
            if not _TEMPLATE_NAME.match(name):
                out.append(f"bad message template name {name!r} (lower case, digits, _)")
            out.extend(f"message template {name}: {p}" for p in template.problems())
        for name, service in self.rateable.items():
            if not _TEMPLATE_NAME.match(name):
                out.append(f"bad rateable service name {name!r} (lower case, digits, _)")
            out.extend(f"rateable service {name}: {p}" for p in service.problems())
        if self.contract != CONTRACT_VERSION:
            out.append(f"written for contract {self.contract}; this platform speaks {CONTRACT_VERSION}")
        return out


class Scanner(msgspec.Struct, frozen=True):
    client_id: str
    place: str
    context: str


class ScanEvent(msgspec.Struct, frozen=True):
    """A scan the platform verified (signature, time, entitlement, single use, account state)."""

    openid: str  # the citizen's pairwise id for this mini-app
    entitlements: dict[str, Any]  # readable entitlements from the code
    scanner: Scanner
    scanned_at: datetime
    record_id: str
    offline: bool  # uploaded later by an offline terminal
    meta: dict[str, str] = msgspec.field(default_factory=dict)  # what the terminal added (e.g. a plate)
    # the gate screen's language, "zh-CN" or "en": write the Display in it, one language per screen
    locale: str = "zh-CN"
    # fen the citizen owes on deferred orders of every mini-app, as the payment centre last counted it
    # (given to a mini-app that decides fast, :meth:`MiniApp.decide`; None on the other path)
    unpaid: int | None = None

    def text(self, zh: str, en: str) -> str:
        """``zh`` or ``en``, whichever is this gate's language."""
        return en if self.locale == "en" else zh


class Display(msgspec.Struct, frozen=True):
    """What the gate screen shows, in the scan's ``locale`` (title and subtitle in the same language)."""

    title: str
    subtitle: str = ""
    color: Literal["green", "yellow", "red"] = "green"


class ScanDecision(msgspec.Struct, frozen=True):
    allow: bool
    reason: str = "ok"
    display: Display | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)  # shown to the scanner (fare, gate no., ...)


class Fast(msgspec.Struct, frozen=True):
    """A decision made from state at hand (:meth:`MiniApp.decide`): the answer, the rider's new state at
    this mini-app (None: unchanged), and what :meth:`MiniApp.apply` writes behind it (b"": nothing)."""

    decision: ScanDecision
    state: bytes | None = None
    effect: bytes = b""
    owes: int = 0  # fen of deferred orders the effect creates (counted as unpaid at once)


class Effect(msgspec.Struct, frozen=True):
    """One decided scan's writes, handed to :meth:`MiniApp.apply` (in the order the scans were decided)."""

    openid: str
    record: str  # "<scanner>/<record id>": unique per scan, the key that makes applying it twice a no-op
    data: bytes  # the ``effect`` of its :class:`Fast`


class Gauge(msgspec.Struct, frozen=True):
    """A live figure a mini-app shows on the operators' dashboard (e.g. free spaces in one car park)."""

    name: str  # what is measured, e.g. "free_spaces"
    label_zh: str
    label_en: str
    value: float
    of: float | None = None  # the whole it is part of (capacity), drawn as a bar when given


class DemoScanner(msgspec.Struct, frozen=True):
    """A scanner ``shengshi seed-demo`` enrols for the mini-app, so the console's scanner simulator works
    out of the box: at ``place`` (a code of the app's demo data), for one of its scan contexts."""

    context: str
    place: str
    name: str  # what operators read in the console (its default language is Chinese)
    formerly: str = ""  # the name an earlier version gave it: renamed, not enrolled a second time


class Contribution(msgspec.Struct, frozen=True):
    """A mini-app's answer for one entitlement of one citizen (:meth:`MiniApp.entitlement`)."""

    granted: bool
    # when this answer changes by itself with no event (e.g. midnight for a ticket valid today): the
    # citizen's code is not kept past it. None: only an event changes it (then call
    # ``platform.entitlement_changed``).
    until: datetime | None = None
    # why it is not granted, a short machine code the wallet explains (e.g. "unpaid_fares")
    reason: str = ""
    # what the citizen sees beside it in the wallet (small, no personal data: e.g. {"unpaid": 1200})
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


class Note(msgspec.Struct, frozen=True):
    """One message for :meth:`Platform.notify_many`."""

    openid: str
    template: str  # the name in the manifest's ``templates``
    data: dict[str, Any]
    key: str  # the idempotency key: the same key again sends nothing more
    at: datetime | None = None  # show it then (a reminder); None: now


class PastRating(msgspec.Struct, frozen=True):
    """A rating a mini-app kept itself before the evaluation centre, for :meth:`Platform.import_ratings`."""

    openid: str
    key: str  # the event's key, as :meth:`Platform.rateable` would have been given it
    occurred_at: datetime
    rated_at: datetime
    level: int  # 1 (非常不满意) … 5 (非常满意)
    comment: str = ""
    unit: str = ""  # one of the app's units ("": the app's own)


class LicenceAsk(msgspec.Struct, frozen=True):
    """Where a request for licence fields stands (:meth:`Platform.ask_licence`)."""

    id: str
    state: str  # pending | approved | refused | expired | used | revoked
    fields: tuple[str, ...] = ()


class SharedLicence(msgspec.Struct, frozen=True):
    """What the citizen consented to share (:meth:`Platform.licence_fields`): the fields, and the
    issuer-signed presentation that proves them (keep it as the record, or pass it to a verifier)."""

    request: str
    type: str
    fields: dict[str, Any]
    presentation: str
    expires_at: datetime


# ---- a privacy number's binding (see Platform.privacy_number; 扫码挪车) ------------------------------------
class PrivacyBinding(msgspec.Struct, frozen=True):
    """A privacy number (隐私号) bound to a citizen for a few minutes (:meth:`Platform.privacy_number`):
    a call to ``number`` before ``expires_at`` reaches the citizen's phone through the provider, and
    neither side sees the other's real number. The citizen's number never leaves the platform."""

    number: str  # the virtual number to call (E.164)
    expires_at: datetime
    binding: str  # the provider's id of the binding


class PaymentEvent(msgspec.Struct, frozen=True):
    type: Literal["order.paid", "order.refunded", "order.failed", "order.closed"]
    order_id: str
    reference: str  # the mini-app's own reference for the order
    openid: str
    amount: int  # fen
    refunded: int = 0
    at: datetime | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


# ---- codes read by a mini-app's own protocol server (一码借阅) --------
class Identified(msgspec.Struct, frozen=True):
    """A citizen code verified for one of the app's scanners (:meth:`Platform.identify`)."""

    allow: bool
    reason: str  # "ok", or the platform's refusal (expired, replayed, account_blocked, scanner_revoked, ...)
    openid: str = ""  # the citizen's pairwise id for this mini-app, when allowed
    scanner: Scanner | None = None
    record_id: str = ""  # the scan's record in the citizen's scan history


class Platform(Protocol):
    """What the platform offers a mini-app (built by the platform, one per mini-app)."""

    app_id: str
    config: dict[str, Any]
    log: logging.Logger

    def now(self) -> datetime: ...

    async def kv_get(self, key: str) -> bytes | None: ...

    async def kv_set(self, key: str, value: bytes | str, ttl: float | None = None) -> None: ...

    async def kv_set_if_absent(self, key: str, value: bytes | str, ttl: float) -> bool: ...

    async def knows(self, openid: str) -> bool:
        """Whether ``openid`` is a citizen's pairwise id for this mini-app (one another app was given, or
        a made-up one, is not)."""

    def transaction(self) -> Any:
        """``async with platform.transaction():`` — the app's writes (its tables, and orders it makes
        through ``payments``) commit together or not at all. ``on_scan`` already runs in one; a route that
        changes several rows needs its own, so a failure half-way (the database gone, an error) leaves
        nothing half-written."""

    async def upsert(
        self, table: Any, rows: list[dict[str, Any]], *, key: str, only_if: tuple[str, Any] | None = None
    ) -> None:
        """Insert many rows of one of the app's tables in one statement per 500 (for :meth:`MiniApp.apply`):
        a row whose ``key`` column exists already updates it, only while the existing row's ``only_if``
        column holds the given value (when one is named). Every row names the same columns."""

    async def entitlement_changed(self, *openids: str) -> None:
        """What this mini-app contributes to these citizens' codes may have changed (a ticket paid or
        refunded, a fare left unpaid): their current codes are dropped and their wallets told to fetch a
        new one, which asks :meth:`MiniApp.entitlement` again. Cheap; call it in bulk from ``apply``."""

    async def notify(
        self, openid: str, template: str, data: dict[str, Any], *, key: str, at: datetime | None = None
    ) -> Notice:
        """Send the citizen a message with one of the manifest's ``templates``, ``data`` filling its
        placeholders (:class:`InvalidInput` when it does not fit: a bug of the mini-app). A template an
        operator has not approved (yet) sends nothing: the answer is ``skipped`` with the reason
        ``template_not_approved`` (logged), so the mini-app's own writes never fail for it. ``key``
        makes it once: the same key again answers ``duplicate``. ``at`` schedules it (a reminder
        before a reservation lapses); withdraw it with :meth:`cancel_notice`. A reminder reaches only a
        citizen who subscribed to it: otherwise the answer is ``skipped`` with the reason
        (``not_subscribed``, ``opted_out``, ``daily_cap``). Inside a transaction (``on_scan``,
        ``apply``) the message commits with the mini-app's writes."""

    async def notify_many(self, notes: list[Note]) -> list[Notice]:
        """:meth:`notify` for many at once (from ``apply``: one batch of statements, not one per note)."""

    async def cancel_notice(self, key: str) -> bool:
        """Withdraw a scheduled message not shown yet; False when it was shown already (or never sent)."""

    async def rateable(
        self, openid: str, service: str, *, key: str, unit: str = "", at: datetime | None = None
    ) -> str | None:
        """The citizen had ``service`` (a name in the manifest's ``rateable``) at ``unit`` (a code given
        to :meth:`save_units`; "" for the app's own unit, named after the app): they may rate it once,
        within its window, and are invited to in their inbox when the service says so. ``key`` makes it
        once (a visit's id, a scan's record). Inside a transaction it commits with the app's writes.
        Returns the event's id (None for an openid the platform does not know)."""

    async def save_units(self, units: list[RatingUnit]) -> None:
        """Add or rename the app's units that answer for their ratings (a hospital, a car park's
        operator), each with its district; idempotent (call it from ``startup`` or ``seed_demo``)."""

    async def import_ratings(self, service: str, ratings: list[PastRating]) -> int:
        """Move ratings the app kept itself into the evaluation centre (idempotent by key; a past rating
        opens no case). Returns how many were new."""

    async def ask_licence(
        self,
        openid: str,
        licence_type: str,
        fields: list[str],
        purpose: str,
        *,
        key: str,
        standing: bool = False,
    ) -> LicenceAsk | None:
        """Ask the citizen for named fields of one of their licences (授权), for ``purpose`` (shown to
        them): once, or ``standing`` (until they withdraw it). They are told in their inbox and decide in
        the app. ``key`` makes it once (the same key: the same request). None for an openid the platform
        does not know."""

    async def licence_request(self, request_id: str) -> LicenceAsk:
        """Where a request of this app stands now."""

    async def licence_fields(self, request_id: str) -> SharedLicence:
        """The consented fields, logged in the citizen's use log; a one-time consent is spent by it.
        :class:`Conflict` (``consent_pending``, ``consent_refused``, ``consent_used``, ``consent_revoked``,
        ``consent_expired``, ``licence_suspended``, ``licence_revoked``) when there is nothing to give."""

    # ---- codes read by a mini-app's own protocol server (一码借阅) ----
    async def scanner_login(self, client_id: str, secret: str, *, ip: str = "") -> Scanner | None:
        """One of this app's scanners, by the client id and secret of its credential, presented some
        other way than HTTP (a SIP2 kiosk's login message); None when wrong, revoked, not a scanner or
        another app's."""

    async def identify(self, code: str, *, scanner: str) -> Identified:
        """Verify a citizen code scanned at one of this app's scanners (its ``client_id``), as a scan
        at ``POST /api/v1/scans`` is verified: signature, time window, the entitlement the scanner's
        context requires, single use in that context, account state; kept in the citizen's scan history.
        The app is not asked to decide (no ``on_scan``): it gets the citizen's pairwise openid, for a
        terminal that speaks a protocol of its own (a library's SIP2 kiosk). A revoked scanner gets
        ``scanner_revoked``."""

    # ---- a listener only in a server (一码借阅) ----
    #: True in a server's worker; False in an operator's command (``shengshi scanners revoke``, ``migrate``,
    #: ``seed-demo``), which starts the app too: a listener of the app's own (a TCP port, a background
    #: loop) starts in :meth:`MiniApp.startup` only when it is True, or the command would take the
    #: server's port (and fail, or answer kiosks for the second it runs).
    serving: bool

    # ---- a shared counter, an SMS due at a set time, privacy numbers (扫码挪车) -------------------------
    async def kv_incr(self, key: str, ttl: float, by: int = 1) -> int:
        """Add ``by`` to the counter ``key`` of the app's namespace and return its new value, atomically
        across workers (the shared store); a counter that did not exist starts at 0 and lives ``ttl``
        seconds from then (a rate limit's window)."""

    async def notify_urgent(
        self,
        openid: str,
        template: str,
        data: dict[str, Any],
        *,
        key: str,
        at: datetime | None = None,
        sms_after: float = 0.0,
    ) -> Notice:
        """:meth:`notify` with an urgent transactional template whose SMS fallback is due ``sms_after``
        seconds after the message shows (at ``at``), rather than the platform's
        ``SHENGSHI_MESSAGE_SMS_AFTER``: the SMS goes out then unless the citizen has read the message or
        the app withdrew it (:meth:`cancel_notice`) before it showed. The schedule is in the database:
        it survives a restart and is sent once across workers. :class:`InvalidInput` for a template that
        is not urgent."""

    async def privacy_number(self, openid: str, *, minutes: int) -> PrivacyBinding | None:
        """Bind a privacy number (隐私号) to the citizen's phone for ``minutes`` (1-30) through the
        platform's provider: whoever calls it reaches the citizen, and neither number is shown to the
        other side. The citizen's real number is resolved inside the platform and never given to the app.
        None for an openid the platform does not know or an account without a reachable phone;
        :class:`ServiceUnavailable` (``privacy_number_unavailable``) when no provider is configured."""

    # ---- finding a citizen, sealing keys, signing documents (扫码门禁 doors) --------
    async def find_citizen(self, *, phone: str | None = None, id_number: str | None = None) -> str | None:
        """This mini-app's pairwise id of the citizen with this mobile number (any account) or ID number
        (only a real-name-verified account: a self-typed number finds nobody), looked up through the
        platform's keyed index; None when there is none, or the account is blocked or deleted. Exactly
        one of the two. The number is never given back nor logged. :class:`InvalidInput`
        (``invalid_phone``, ``invalid_id_number``) for a malformed number."""

    def seal(self, data: bytes, context: str) -> str:
        """Encrypt a secret of the app's (a key it keeps in its tables) with the platform's key-encryption
        key, bound to this app and ``context`` (a row's identity): text to store."""

    def unseal(self, text: str, context: str) -> bytes:
        """The secret :meth:`seal` sealed with the same ``context``; ValueError when it does not open."""

    async def sign_document(self, document: dict[str, Any], typ: str) -> dict[str, str]:
        """``document`` as a flattened JWS (ES256, raw r||s) signed by the trust list's root key, the key
        every scanner pins (``GET /api/v1/codes/trust-root``), with ``typ`` in the protected header
        (``[a-z0-9.+-]{1,40}``) and the app's id as ``app``: documents an app's terminals check offline
        (checking ``typ`` and ``app``). The trust list (``typ`` ``trust-list+json``, or a document whose
        ``type`` is the trust list's) is the platform's own: ValueError."""

    # ---- end of the doors additions

    @property
    def payments(self) -> Any:
        """``create_order(openid=, reference=, amount=, description=, deferred=)``,
        ``create_deferred_orders([{openid, reference, amount, description}])`` (in bulk, for
        :meth:`MiniApp.apply`), ``unpaid_total(openid)``, ``charge(order_id)``: the payment centre as this
        mini-app may use it."""


class MiniApp(ABC):
    """Subclass this, set ``manifest``, and decide scans one of two ways:

    - :meth:`on_scan`: the decision and the mini-app's writes run in one database transaction with the
      scan's record, within the platform's time budget. Simple, and right for scans that are not many.
    - :meth:`decide` + :meth:`load_state` + :meth:`apply`, for a gate at rush hour: the platform hands
      ``decide`` the rider's state at this mini-app (bytes the mini-app defines, kept by the platform in
      the shared store and read in the same round trip that claims the code) and ``decide`` answers from
      it with no I/O; the answer, the new state and the effect are committed together in the store (a
      concurrent change of the rider's state makes the platform call ``decide`` again with the new one),
      then the gate is answered; ``apply`` writes the effects to the database behind it, in batches, in
      one transaction with the scans' records. An effect is applied at least once (again after a crash,
      never lost), so ``apply`` must make a second application a no-op (key it by ``Effect.record``).
    """

    manifest: ClassVar[Manifest]
    # The module holding this mini-app's Piccolo app (``APP_CONFIG``), e.g. "my_miniapp.piccolo_app";
    # None: the mini-app keeps no tables. See the module's docstring.
    piccolo_app: ClassVar[str | None] = None
    # Scanners ``shengshi seed-demo`` enrols for this mini-app (at places of its demo data).
    demo_scanners: ClassVar[tuple[DemoScanner, ...]] = ()

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def route_handlers(self) -> list[Any]:
        """Litestar handlers or controllers, mounted under ``/api/v1/apps/{id}``. A handler receives the
        calling citizen's pairwise id by declaring ``caller: NamedDependency[AppCaller]`` and the guard
        ``citizen_caller`` (both offered here)."""
        return []

    # How long the platform keeps a rider's state (see :meth:`decide`) after its last change, seconds.
    state_ttl: ClassVar[float] = 2 * 24 * 3600.0

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        """Decide a verified scan at one of this mini-app's scanners, within the platform's time budget
        (an exception or a timeout becomes a refusal ``app_unavailable``). Every mini-app implements
        this or :meth:`decide` (checked when it is loaded)."""
        raise TypeError(f"{type(self).__name__} implements neither on_scan nor decide")

    async def decide(self, scan: ScanEvent, state: bytes | None) -> Fast:
        """Decide a scan from the rider's ``state`` at this mini-app (what an earlier decision or
        :meth:`load_state` left) and from what the mini-app holds in memory; see the class's docstring.
        It runs on every gate's path: no I/O but the rare refresh of a cache (e.g. a timetable)."""
        raise TypeError(f"{type(self).__name__} does not decide from state")

    async def load_state(self, openid: str) -> bytes | None:
        """The rider's state from the mini-app's own tables, when the store holds none (a rider new to
        the mini-app, or not seen for :attr:`state_ttl`)."""
        return None

    async def apply(self, effects: list[Effect]) -> None:  # noqa: B027 - optional
        """Write decided scans' effects to the database, inside the platform's transaction. Applying an
        effect again must change nothing."""

    @classmethod
    def decides_fast(cls) -> bool:
        """Whether this mini-app decides from state (:meth:`decide`) rather than by :meth:`on_scan`."""
        return cls.decide is not MiniApp.decide

    async def on_payment_event(self, event: PaymentEvent) -> None:  # noqa: B027 - optional
        """An order of this mini-app was paid, refunded, failed or closed (at least once per event)."""

    async def entitlement(self, openid: str, name: str, at: datetime) -> Contribution:
        """For a mini-app whose manifest ``contributes`` entitlement ``name``: whether the citizen holds
        it at ``at``. Asked when the citizen's code is issued (about every half minute per active
        citizen): one indexed read, no more."""
        raise TypeError(f"{type(self).__name__} contributes {name!r} but does not answer for it")

    # ---- keyed claims in the citizen code (扫码门禁 doors) ------------------------
    async def code_claims(self, openid: str, cti: bytes) -> list[tuple[int, bytes]]:
        """Optional, for one mini-app of a platform: keyed claims the citizen's next code carries, computed
        for that code's ``cti`` (12 random bytes): at most two ``(scope, value)`` pairs, scope a number
        below 2**32, value 8 bytes that change with ``cti`` (so two codes cannot be linked) and that only
        the mini-app's own terminals can read (doors: the community's number and the resident's handle
        masked by an HMAC of ``cti`` under the community's key). Asked each time a code is issued: one
        indexed read. A failure leaves the code without them. Call
        :meth:`Platform.entitlement_changed` when they change (a resident removed)."""
        return []

    @classmethod
    def adds_code_claims(cls) -> bool:
        """Whether this mini-app adds keyed claims to the code (:meth:`code_claims`)."""
        return cls.code_claims is not MiniApp.code_claims

    # ---- end of the doors additions

    async def gauges(self) -> list[Gauge]:
        """Optional: live figures for the operators' dashboard, read every few seconds (keep it cheap)."""
        return []

    async def startup(self) -> None:  # noqa: B027 - optional
        """Called once when the app starts."""

    async def shutdown(self) -> None:  # noqa: B027 - optional
        """Called once when the app stops."""

    def seed_demo(self) -> Any:
        """Optional: an awaitable creating demo data, or None."""
        return None

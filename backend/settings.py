"""Typed settings read from the environment (prefix ``SHENGSHI_``).

Every field is converted on its own so that start-up reports *every* bad value at once, each with the
variable's name. In ``dev`` and ``test`` the secrets are generated on first start and kept in
``<data_dir>/dev-secrets.json``; ``prod`` never does that and refuses to start without real secrets,
with the in-process store, with SQLite, or with the development SMS gateway or real-name provider.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

PREFIX = "SHENGSHI_"
log = logging.getLogger("shengshitong.settings")

# Secrets the service needs; each is 32 random bytes in URL-safe base64 unless said otherwise.
SECRET_FIELDS = ("secret_key", "key_encryption_key", "pii_keys")
HIDDEN_FIELDS = (*SECRET_FIELDS, "sms_http_token", "realname_http_secret")


class SettingsError(Exception):
    """Raised at start-up with one line per bad or missing setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    env: Literal["dev", "test", "prod"] = "dev"
    # Storage. Empty database_url = SQLite file under data_dir; empty redis_url = in-process store.
    database_url: str = ""
    redis_url: str = ""
    store_prefix: str = "shengshi:"
    data_dir: str = "var"
    db_pool_min: int = 1
    db_pool_max: int = 10
    # PostgreSQL: seconds a statement may run, and a request may wait for a pooled connection, before it
    # is given up and answered 503 database_unavailable (a server that stops answering without refusing,
    # e.g. behind a dead network path, would otherwise hold the request for ever). The API's statements
    # take milliseconds; operators' commands (`shengshi ...`: a day's reconciliation) allow 10 minutes.
    db_command_timeout: float = 5.0
    db_acquire_timeout: float = 5.0
    # Secrets (never committed; generated for dev/test only).
    secret_key: str = ""
    key_encryption_key: str = ""
    # Keys for personal data at rest: "kid:base64url32,kid2:..." — the first one encrypts, all decrypt.
    pii_keys: str = ""
    # HTTP
    max_body_bytes: int = 1_048_576
    public_url: str = "http://127.0.0.1:8000"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    # Identity
    sms_gateway: Literal["dev", "http"] = "dev"
    sms_http_url: str = ""
    sms_http_token: str = ""
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    otp_ttl: int = 300
    otp_max_attempts: int = 5
    otp_per_phone_per_hour: int = 5
    otp_per_ip_per_hour: int = 30
    otp_resend_interval: int = 60
    token_issuer: str = "https://shengshitong.example"  # noqa: S105 - a URL, not a secret
    machine_auth_cache_seconds: float = 5.0
    # Real-name verification (实名认证): "development" (make run, tests; refused in prod) or "http" (an
    # identity-verification gateway, docs/identity.md); attempts per citizen and per ID number per day
    realname_provider: Literal["development", "http"] = "development"
    realname_http_url: str = ""
    realname_http_app_id: str = ""
    realname_http_secret: str = ""
    realname_http_name: str = "http"  # recorded as the provider of a verification
    realname_http_timeout: float = 5.0
    realname_http_max_skew: int = 300
    realname_attempts_per_day: int = 5
    realname_attempts_per_id_number_per_day: int = 10
    # Citizen codes
    code_issuer: str = "SST"
    code_alg: Literal["ES256", "EdDSA"] = "ES256"
    code_validity: int = 60
    code_refresh_after: int = 30
    code_skew: int = 30
    # how long after a scan an offline terminal may upload it (and the cti -> citizen mapping is kept)
    code_batch_window: int = 24 * 3600
    trust_list_refresh: int = 3600
    # the largest bulk upload of entitlement changes an owner may stream in one request (NDJSON)
    entitlement_upload_max_bytes: int = 2 * 1024**3
    # Mini-apps: the enabled ones, in order (comma-separated ids), and a scan handler's time budget
    miniapps: str = "transit,parking,hospital,tourism,civic,library,carmove,doors"
    miniapp_scan_budget: float = 0.3
    # Privacy numbers (隐私号) a mini-app may bind to a citizen for a call (扫码挪车): "development" (an
    # in-process provider for make run and the tests; refused in prod) or "off" (docs/miniapps.md)
    privacy_number_provider: Literal["development", "off"] = "development"
    # A fast decision's writes (mini-apps that decide from state): "behind" the answer, in batches (the
    # production mode: the journal in Redis keeps them until written), "inline" before the answer (one
    # process, and tests that read the books right after a scan), or "auto": behind with Redis.
    gate_writes: Literal["auto", "behind", "inline"] = "auto"
    # Payments: the enabled channels, in order (comma-separated names; each channel reads and checks
    # its own settings, SHENGSHI_<CHANNEL>_*: see payments/registry.py)
    payment_channels: str = "sandbox"
    order_ttl: int = 1800
    webhook_base_delay: float = 5.0
    webhook_max_attempts: int = 12
    webhook_interval: float = 1.0
    # What the payment centre asks of the channels on its own (docs/payments.md, "When a notice does not
    # come"): seconds a payment may stay unpaid before its channel is asked about it, seconds before a
    # pending refund is asked about (or for again), and seconds between two passes of every worker's loop
    payment_query_after: float = 120.0
    payment_refund_retry_after: float = 60.0
    payment_recovery_interval: float = 30.0
    # Messages (docs/messages.md): reminders and announcements per citizen a day; reminders a sender may
    # send a minute; seconds an urgent message may stay unread before an SMS goes out; delivery retries
    message_daily_cap: int = 20
    message_app_per_minute: int = 6000
    message_sms_after: float = 600.0
    message_retry_base_delay: float = 5.0
    message_max_attempts: int = 8
    message_interval: float = 1.0
    # days a message stays in the inbox (then it goes, with its delivery log; each worker purges hourly)
    message_retention_days: int = 365
    # Announcements: citizens looked at per batch (one transaction each), and the seconds a worker holds
    # an announcement between batches (a killed worker's announcement is taken up when it lapses)
    message_announce_batch: int = 1000
    message_announce_lease: float = 30.0
    # 好差评 (docs/ratings.md): working days a unit has to answer a bad rating (verify, rectify or explain),
    # days the rater has to call back on the answer, and seconds between rounds of the overdue check
    rating_rectify_days: int = 15
    rating_callback_days: int = 7
    rating_interval: float = 60.0
    # 电子证照 (docs/licences.md): days a credential lives on a device before the app fetches a fresh one;
    # seconds an inspector keeps the issuer trust list; a status list's freshness (ttl) and how long an
    # offline verifier may still rely on one (its exp)
    licence_credential_days: int = 30
    licence_trust_refresh: int = 3600
    licence_status_ttl: int = 300
    licence_status_max_age: int = 86400
    # 财政非税 (docs/fees.md): where each paid notice is posted to the fiscal system (empty: the
    # notifications wait, queued, until it is set), the back-off's first delay and the attempts before a
    # delivery is given up (then an operator resends it), seconds between delivery rounds, and the
    # notice lookups by number a citizen (and a network address) may make a minute
    fiscal_url: str = ""
    fiscal_base_delay: float = 5.0
    fiscal_max_attempts: int = 12
    fiscal_interval: float = 1.0
    fee_lookups_per_minute: int = 20
    # Web Push: the contact push services see in our VAPID token, and the push services' hosts a
    # browser's subscription may point at (its endpoint is a URL we post to: nothing else is allowed)
    push_subject: str = "mailto:webpush@shengshitong.example"
    push_services: str = (
        "fcm.googleapis.com,updates.push.services.mozilla.com,push.services.mozilla.com,"
        "notify.windows.com,web.push.apple.com"
    )
    # Server: on SIGTERM, how long open requests (a dashboard's event stream never ends by itself) may
    # run before they are cut; the load balancer sends the reconnecting viewer to another worker
    shutdown_grace: float = 10.0
    # Console: host names the console is served under behind HTTPS (piccolo-admin's CSRF referer check)
    console_allowed_hosts: str = ""
    # Live dashboard: how often each worker publishes its scan counts, and how often viewers get a frame
    dashboard_flush_interval: float = 1.0
    dashboard_push_interval: float = 2.0
    # The SHENGSHI_* variables no field above reads: plugins' own settings (a payment channel's keys),
    # each read and checked by its plugin with :func:`load_section`. Not a variable of its own.
    plugin_env: dict[str, str] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        """Secrets, and plugins' values (a channel's keys among them), never shown: names only."""
        shown = []
        for field in msgspec.structs.fields(self):
            value = getattr(self, field.name)
            if field.name == "plugin_env":
                shown.append(f"plugin_env=<{', '.join(sorted(value)) or 'none'}: values hidden>")
            else:
                shown.append(f"{field.name}={'<hidden>' if field.name in HIDDEN_FIELDS else repr(value)}")
        return f"Settings({', '.join(shown)})"

    # ---- derived values -------------------------------------------------------------------------
    @property
    def sqlite_path(self) -> str:
        if self.database_url.startswith("sqlite:///"):
            return self.database_url.removeprefix("sqlite:///")
        return str(Path(self.data_dir) / "shengshitong.sqlite3")

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def is_dev(self) -> bool:
        return self.env != "prod"

    def secret_bytes(self, name: str) -> bytes:
        return decode_key(getattr(self, name))

    def pii_keyring(self) -> list[tuple[str, bytes]]:
        return parse_keyring(self.pii_keys)


def decode_key(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def parse_keyring(value: str) -> list[tuple[str, bytes]]:
    ring = []
    for part in value.split(","):
        kid, sep, key = part.strip().partition(":")
        if not sep or not kid or not key:
            raise ValueError("expected 'kid:base64url-key[,kid:key...]'")
        raw = decode_key(key)
        if len(raw) != 32:
            raise ValueError(f"key {kid!r} must be 32 bytes, got {len(raw)}")
        ring.append((kid, raw))
    return ring


def _check_secret(name: str, value: str) -> str | None:
    if name == "pii_keys":
        try:
            parse_keyring(value)
        except (ValueError, UnicodeError, base64.binascii.Error) as exc:  # type: ignore[attr-defined]
            return f"{PREFIX}{name.upper()}: {exc}"
        return None
    try:
        raw = decode_key(value)
    except (ValueError, UnicodeError):
        return f"{PREFIX}{name.upper()}: not URL-safe base64"
    if len(raw) < 32:
        return f"{PREFIX}{name.upper()}: must decode to at least 32 bytes, got {len(raw)}"
    return None


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    """Load, or create on first start, the development secrets file."""
    path = data_dir / "dev-secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {"secret_key": new_key(), "key_encryption_key": new_key(), "pii_keys": f"dev1:{new_key()}"}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    log.warning("generated development secrets in %s (never use them in production)", path)
    return values


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from ``SHENGSHI_*`` variables; raise SettingsError naming every bad value."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, Any] = {}
    names = {field.name for field in msgspec.structs.fields(Settings)}
    # plugins' settings: the environment's, then the caller's (``wechatpay_mchid=...`` is
    # SHENGSHI_WECHATPAY_MCHID, as a core field's override is its variable)
    values["plugin_env"] = {
        **{
            k: v for k, v in environ.items() if k.startswith(PREFIX) and k[len(PREFIX) :].lower() not in names
        },
        **overrides.get("plugin_env", {}),
        **{PREFIX + k.upper(): str(v) for k, v in overrides.items() if k not in names},
    }
    for field in msgspec.structs.fields(Settings):
        if field.name == "plugin_env":
            continue
        var = PREFIX + field.name.upper()
        if field.name in overrides:
            values[field.name] = overrides[field.name]
            continue
        raw = environ.get(var)
        if raw is None:
            continue
        try:
            values[field.name] = msgspec.convert(raw, field.type, strict=False)
        except msgspec.ValidationError as exc:
            problems.append(f"{var}={_shown(field.name, raw)}: {exc}")
    if problems:
        raise SettingsError(problems)

    env = values.get("env", "dev")
    missing = [name for name in SECRET_FIELDS if not values.get(name)]
    if missing and env != "prod":
        generated = _dev_secrets(Path(values.get("data_dir", "var")))
        for name in missing:
            values[name] = generated[name]
    settings = Settings(**values)

    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if not value:
            problems.append(f"{PREFIX}{name.upper()} is required in prod (32 random bytes, URL-safe base64)")
        elif (problem := _check_secret(name, value)) is not None:
            problems.append(problem)
    url = settings.database_url
    if url and not url.startswith(("postgres://", "postgresql://", "sqlite:///")):
        problems.append(f"{PREFIX}DATABASE_URL: expected postgresql://... or sqlite:///path, got {url!r}")
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append(f"{PREFIX}REDIS_URL: expected redis://host:port/db, got {settings.redis_url!r}")
    if (
        not 10 <= settings.code_validity <= 600
        or not 0 < settings.code_refresh_after < settings.code_validity
    ):
        problems.append(f"{PREFIX}CODE_VALIDITY must be 10-600 s and {PREFIX}CODE_REFRESH_AFTER below it")
    for name in ("dashboard_flush_interval", "dashboard_push_interval"):
        if not 0.1 <= getattr(settings, name) <= 60:
            problems.append(f"{PREFIX}{name.upper()}: must be 0.1 to 60 seconds")
    for name in ("db_command_timeout", "db_acquire_timeout"):
        if not 0 < getattr(settings, name) <= 3600:
            problems.append(f"{PREFIX}{name.upper()}: must be more than 0 and at most 3600 seconds")
    if not 1 <= settings.shutdown_grace <= 600:
        problems.append(f"{PREFIX}SHUTDOWN_GRACE: must be 1 to 600 seconds")
    if settings.message_daily_cap < 1 or settings.message_app_per_minute < 1:
        problems.append(f"{PREFIX}MESSAGE_DAILY_CAP and {PREFIX}MESSAGE_APP_PER_MINUTE: at least 1")
    if not 0 < settings.message_sms_after <= 7 * 86400:
        problems.append(f"{PREFIX}MESSAGE_SMS_AFTER: more than 0 and at most a week (seconds)")
    if not 0 < settings.message_interval <= 60 or not 0 < settings.message_retry_base_delay <= 3600:
        problems.append(f"{PREFIX}MESSAGE_INTERVAL and {PREFIX}MESSAGE_RETRY_BASE_DELAY: seconds, above 0")
    if not 1 <= settings.rating_rectify_days <= 60 or not 1 <= settings.rating_callback_days <= 90:
        problems.append(f"{PREFIX}RATING_RECTIFY_DAYS (1 to 60) and {PREFIX}RATING_CALLBACK_DAYS (1 to 90)")
    if not 1 <= settings.licence_credential_days <= 365:
        problems.append(f"{PREFIX}LICENCE_CREDENTIAL_DAYS: 1-365 days")
    if not 60 <= settings.licence_status_ttl <= settings.licence_status_max_age <= 7 * 86400:
        problems.append(f"{PREFIX}LICENCE_STATUS_TTL / _MAX_AGE: 60 s <= ttl <= max age <= 7 days")
    if not 60 <= settings.licence_trust_refresh <= 86400:
        problems.append(f"{PREFIX}LICENCE_TRUST_REFRESH: 60-86400 seconds")
    if settings.fiscal_url and not settings.fiscal_url.startswith(("https://", "http://")):
        problems.append(f"{PREFIX}FISCAL_URL: an http(s) URL")
    if settings.env == "prod" and settings.fiscal_url.startswith("http://"):
        problems.append(f"{PREFIX}FISCAL_URL: https in production")
    if not 0 < settings.fiscal_base_delay <= 3600 or not 1 <= settings.fiscal_max_attempts <= 50:
        problems.append(f"{PREFIX}FISCAL_BASE_DELAY (seconds, 0-3600) and {PREFIX}FISCAL_MAX_ATTEMPTS (1-50)")
    if not 0 <= settings.fiscal_interval <= 3600:
        problems.append(f"{PREFIX}FISCAL_INTERVAL: 0 to 3600 seconds")
    if not 1 <= settings.fee_lookups_per_minute <= 10_000:
        problems.append(f"{PREFIX}FEE_LOOKUPS_PER_MINUTE: 1 to 10000")
    if not 0 < settings.rating_interval <= 3600:
        problems.append(f"{PREFIX}RATING_INTERVAL: seconds, above 0, at most 3600")
    if not 10 <= settings.message_announce_batch <= 10_000:
        problems.append(f"{PREFIX}MESSAGE_ANNOUNCE_BATCH: 10 to 10000 citizens")
    if not 7 <= settings.message_retention_days <= 3650:
        problems.append(f"{PREFIX}MESSAGE_RETENTION_DAYS: 7 to 3650")
    if not 1 <= settings.message_announce_lease <= 600:
        problems.append(f"{PREFIX}MESSAGE_ANNOUNCE_LEASE: 1 to 600 seconds")
    if not 1 <= settings.message_max_attempts <= 50:
        problems.append(f"{PREFIX}MESSAGE_MAX_ATTEMPTS: 1 to 50")
    if not settings.push_subject.startswith(("mailto:", "https://")):
        problems.append(f"{PREFIX}PUSH_SUBJECT: a mailto: or https: URI (RFC 8292)")
    if settings.max_body_bytes < 1024:
        problems.append(f"{PREFIX}MAX_BODY_BYTES: must be at least 1024")
    if settings.sms_gateway == "http" and not settings.sms_http_url:
        problems.append(f"{PREFIX}SMS_HTTP_URL is required when {PREFIX}SMS_GATEWAY=http")
    if settings.realname_provider == "http":
        for name in ("realname_http_url", "realname_http_app_id", "realname_http_secret"):
            if not getattr(settings, name):
                problems.append(f"{PREFIX}{name.upper()} is required when {PREFIX}REALNAME_PROVIDER=http")
        if settings.realname_http_url and not settings.realname_http_url.startswith(("https://", "http://")):
            problems.append(f"{PREFIX}REALNAME_HTTP_URL: expected https://host/path")
        if settings.realname_http_secret and len(settings.realname_http_secret) < 16:
            problems.append(f"{PREFIX}REALNAME_HTTP_SECRET: must be at least 16 characters")
    if not 0 < settings.realname_http_timeout <= 60:
        problems.append(f"{PREFIX}REALNAME_HTTP_TIMEOUT: must be more than 0 and at most 60 seconds")
    if not 1 <= settings.realname_http_max_skew <= 3600:
        problems.append(f"{PREFIX}REALNAME_HTTP_MAX_SKEW: must be 1 to 3600 seconds")
    if not 1 <= len(settings.realname_http_name) <= 32:
        problems.append(f"{PREFIX}REALNAME_HTTP_NAME: must be 1 to 32 characters")
    for name in ("realname_attempts_per_day", "realname_attempts_per_id_number_per_day"):
        if getattr(settings, name) < 1:
            problems.append(f"{PREFIX}{name.upper()}: must be at least 1")
    if env == "prod":
        if settings.realname_provider == "development":
            problems.append(
                f"{PREFIX}REALNAME_PROVIDER=development is the development provider; prod needs 'http'"
            )
        if not settings.redis_url:
            problems.append(f"{PREFIX}REDIS_URL is required in prod: the in-process store serves one process")
        if not settings.uses_postgres:
            problems.append(f"{PREFIX}DATABASE_URL must point at PostgreSQL in prod (SQLite is for dev)")
        if settings.sms_gateway == "dev":
            problems.append(f"{PREFIX}SMS_GATEWAY=dev is the development gateway; prod needs 'http'")
        if settings.privacy_number_provider == "development":
            problems.append(
                f"{PREFIX}PRIVACY_NUMBER_PROVIDER=development is the development provider; prod needs 'off'"
                " (or an operator's provider)"
            )
        dev_file = Path(settings.data_dir) / "dev-secrets.json"
        if dev_file.exists():
            dev_values = json.loads(dev_file.read_text())
            for name in SECRET_FIELDS:
                if getattr(settings, name) and getattr(settings, name) == dev_values.get(name):
                    problems.append(f"{PREFIX}{name.upper()} is a development secret from {dev_file}")
    if problems:
        raise SettingsError(problems)
    return settings


def _shown(name: str, raw: str) -> str:
    return "<hidden>" if name in HIDDEN_FIELDS or "token" in name else repr(raw)


S = TypeVar("S", bound=msgspec.Struct)


def load_section(
    cls: type[S], prefix: str, source: Mapping[str, str], *, hidden: Collection[str] = ()
) -> tuple[S | None, list[str]]:
    """A plugin's own settings: each field of ``cls`` from ``<prefix><FIELD>`` in ``source`` (a
    Settings' ``plugin_env``), converted from text like the core's. Returns the settings, or None and one
    line per bad or missing value, each naming its variable (``hidden`` fields' values never shown)."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        var = prefix + field.name.upper()
        raw = source.get(var)
        if raw is None or (raw == "" and field.required):
            if field.required:
                problems.append(f"{var} is required")
            continue
        try:
            values[field.name] = msgspec.convert(raw, field.type, strict=False)
        except msgspec.ValidationError as exc:
            shown = "<hidden>" if field.name in hidden else repr(raw)
            problems.append(f"{var}={shown}: {exc}")
    if problems:
        return None, problems
    return cls(**values), []

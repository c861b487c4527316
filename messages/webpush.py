"""The Web Push channel: one push message to one browser subscription.

* RFC 8030 (Generic Event Delivery Using HTTP Push): a ``POST`` to the subscription's endpoint with
  ``TTL``, ``Urgency`` and, when given, ``Topic``; ``201 Created`` is the normal answer, ``404``/``410``
  say the subscription is gone (the caller forgets it), ``429``/``503`` may carry ``Retry-After``.
* RFC 8291 (Message Encryption for Web Push): the payload is encrypted for the browser with
  ``Content-Encoding: aes128gcm`` (RFC 8188), one record, a fresh ephemeral ECDH key and a random salt
  per message. The encryption is ``http_ece``'s, the web-push-libs implementation pywebpush runs.
* RFC 8292 (VAPID): ``Authorization: vapid t=<JWT>, k=<our public key>``, the JWT signed ES256 with
  ``aud`` = the endpoint's origin, ``exp`` = 12 h ahead and ``sub`` = a contact URI. One JWT per push
  service origin is kept for a few hours and reused, not signed per message.

The endpoint URL is a bearer secret (whoever knows it can push to the browser), so it is never logged
nor put into an outcome's ``error``: only its host is. Endpoints must be on an allowed push service
(:func:`check_target`), which also keeps the sender from being pointed at internal addresses.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

import http_ece
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backend.errors import InvalidInput

log = logging.getLogger("shengshitong.messages.webpush")

Urgency = Literal["very-low", "low", "normal", "high"]
URGENCIES: frozenset[str] = frozenset({"very-low", "low", "normal", "high"})

# RFC 8291 §4: a push service must accept 4096 octets of body; less the aes128gcm header (salt 16, rs 4,
# idlen 1, keyid 65), the padding delimiter (1) and the tag (16), that is 3993 octets of payload.
MAX_PAYLOAD = 3993
RECORD_SIZE = 4096
MAX_ENDPOINT_LENGTH = 1024
JWT_LIFETIME = 12 * 3600  # RFC 8292 §2: no more than 24 h
JWT_REUSE = 6 * 3600  # a cached JWT is used while at least 6 h of it remain
_JWT_CACHE_SIZE = 512  # origins; endpoints on *.notify.windows.com come from many hosts

_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 §5.4
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_ERROR_DETAIL = 120  # characters of a push service's own explanation kept in an outcome's error


_sending: ContextVar[bool] = ContextVar("webpush_sending", default=False)


class _HideEndpoint(logging.Filter):
    """httpx logs every request's URL at INFO ("HTTP Request: POST https://…"); a push endpoint's URL is
    a bearer secret, so while this module sends, that line keeps the URL's origin only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _sending.get() and isinstance(record.args, tuple):
            record.args = tuple(
                f"{a.scheme}://{a.netloc.decode('ascii')}/…" if isinstance(a, httpx.URL) else a
                for a in record.args
            )
        return True


_HIDE_ENDPOINT = _HideEndpoint()


class PushTarget(NamedTuple):
    """A browser's subscription, as ``PushSubscription.toJSON()`` gives it."""

    endpoint: str
    p256dh: str  # base64url (no padding) uncompressed P-256 point, 65 bytes
    auth: str  # base64url, 16 bytes


class PushOutcome(NamedTuple):
    ok: bool  # 2xx (201 Created is the normal answer)
    gone: bool  # 404 or 410: the subscription is dead, the caller forgets it
    status: int  # HTTP status, 0 when no answer
    error: str  # short, never containing the endpoint's secret path
    retry_after: float | None  # seconds, from a Retry-After header on 429/503


class _Allowed(NamedTuple):
    hosts: tuple[str, ...]  # https to these hosts and their subdomains
    origins: frozenset[tuple[str, int]]  # plain http to exactly these loopback (host, port) (tests)


class _Endpoint(NamedTuple):
    url: str
    host: str
    origin: str  # RFC 6454 serialisation: scheme://host[:port], the port only when not the default


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes | None:
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        return None
    bare = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        return None


def application_server_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key browsers subscribe with (``PushManager.subscribe({applicationServerKey})``): the
    uncompressed P-256 point, base64url without padding; also the ``k=`` of every request."""
    return _b64url(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


def _parse_allowed(allowed_hosts: Sequence[str]) -> _Allowed:
    """Bare host names (each allowing https to it and its subdomains) or a plain-http loopback origin
    such as ``http://127.0.0.1:8123`` (tests). Anything else is a configuration mistake: ValueError."""
    if isinstance(allowed_hosts, str):
        raise ValueError("allowed_hosts is a sequence of host names, not one string")
    hosts: list[str] = []
    origins: set[tuple[str, int]] = set()
    for entry in allowed_hosts:
        entry = entry.strip().lower()
        if "://" in entry:
            parts = urlsplit(entry)
            try:
                port = parts.port or 80
            except ValueError:
                raise ValueError(f"allowed push host {entry!r} has a bad port") from None
            if (
                parts.scheme != "http"
                or parts.hostname not in _LOOPBACK
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
                or "@" in parts.netloc
            ):
                raise ValueError(
                    f"allowed push host {entry!r}: only a host name, or plain http to a loopback "
                    "origin (http://127.0.0.1:PORT, http://localhost) for tests"
                )
            origins.add((parts.hostname, port))
        elif _HOSTNAME.fullmatch(entry):
            hosts.append(entry)
        else:
            raise ValueError(f"allowed push host {entry!r} is not a host name")
    return _Allowed(tuple(hosts), frozenset(origins))


def _invalid(detail: str) -> InvalidInput:
    return InvalidInput(detail, code="invalid_push_subscription")


def _not_allowed(detail: str) -> InvalidInput:
    return InvalidInput(detail, code="push_endpoint_not_allowed")


def _endpoint(endpoint: str, allowed: _Allowed) -> _Endpoint:
    if not isinstance(endpoint, str) or not endpoint:
        raise _invalid("the subscription has no endpoint")
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise _invalid(f"the subscription's endpoint is longer than {MAX_ENDPOINT_LENGTH} characters")
    if not endpoint.isascii() or not endpoint.isprintable() or " " in endpoint:
        raise _invalid("the subscription's endpoint holds characters a URL cannot")
    try:  # "https://[fcm.googleapis.com]/" is not even a URL: urlsplit refuses it
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise _invalid("the subscription's endpoint is not a URL (or has a bad port)") from None
    host = parts.hostname or ""
    if not host:
        raise _invalid("the subscription's endpoint is not a URL")
    if "@" in parts.netloc:
        raise _not_allowed("a push endpoint may not carry a user name or password")
    if parts.fragment or endpoint.endswith("#"):  # never in a push service's URL; shown hosts keep out junk
        raise _invalid("a push endpoint has no #fragment")
    if parts.scheme == "https":
        if port not in (None, 443):
            raise _not_allowed("a push endpoint must use the standard https port")
        if not _HOSTNAME.fullmatch(host):  # "evil%2e.fcm.googleapis.com" is no host name
            raise _not_allowed(f"{host[:64]} is not an allowed push service")
        if not any(host == h or host.endswith("." + h) for h in allowed.hosts):
            raise _not_allowed(f"{host} is not an allowed push service")
        return _Endpoint(endpoint, host, f"https://{host}")
    if parts.scheme == "http":
        if (host, port or 80) not in allowed.origins:
            raise _not_allowed("a push endpoint must use https")
        shown = f"[{host}]" if ":" in host else host
        return _Endpoint(endpoint, host, f"http://{shown}" + (f":{port}" if port not in (None, 80) else ""))
    raise _not_allowed("a push endpoint must use https")


def _receiver_key(p256dh: str) -> bytes:
    raw = _unb64url(p256dh)
    if raw is None or len(raw) != 65 or raw[0] != 0x04:
        raise _invalid("p256dh must be an uncompressed P-256 point (65 bytes, base64url)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise _invalid("p256dh is not a point on P-256") from None
    return raw


def _auth_secret(auth: str) -> bytes:
    raw = _unb64url(auth)
    if raw is None or len(raw) != 16:
        raise _invalid("auth must be 16 bytes, base64url")
    return raw


def check_target(target: PushTarget, *, allowed_hosts: Sequence[str]) -> str:
    """Refuse (InvalidInput) a subscription we would not send to: an endpoint that is not https on an
    allowed push service, or keys that are not what a browser gives. Call it when a subscription is
    stored, so a bad one is refused to the citizen instead of failing at every send. Returns the push
    service's host as a URL parser reads it (lower case, no port, user or fragment): what operators see."""
    host = _endpoint(target.endpoint, _parse_allowed(allowed_hosts)).host
    _receiver_key(target.p256dh)
    _auth_secret(target.auth)
    return host


def _retry_after(value: str | None, now: float) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _explanation(response: httpx.Response, endpoint: str) -> str:
    """A push service's own short reason (FCM, Mozilla and Apple say why they refuse), cut short, on
    one line, with anything of the endpoint's path taken out."""
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        return ""
    text = " ".join(text[: _ERROR_DETAIL * 4].split())
    path = urlsplit(endpoint).path
    for secret in sorted({path, *path.split("/")}, key=len, reverse=True):
        if len(secret) >= 6:
            text = text.replace(secret, "…")
    return text[:_ERROR_DETAIL]


class WebPushSender:
    """Sends push messages as one application server (one VAPID key). Built once, closed at shutdown;
    ``send`` may run concurrently."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        subject: str,
        *,
        allowed_hosts: Sequence[str],
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the VAPID key must be a P-256 private key")
        if not (subject.startswith("mailto:") or subject.startswith("https:")):
            raise ValueError("the VAPID subject must be a mailto: or https: URI (RFC 8292 §2.1)")
        self._key = key
        self._subject = subject
        self._public = application_server_key(key)
        self._allowed = _parse_allowed(allowed_hosts)
        self._clock = clock
        self._tokens: dict[str, tuple[float, str]] = {}  # origin -> (signed at, JWT)
        # redirects are not followed: a push service does not redirect, and a redirect would carry our
        # Authorization to wherever it points
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)
        httpx_log = logging.getLogger("httpx")
        if _HIDE_ENDPOINT not in httpx_log.filters:
            httpx_log.addFilter(_HIDE_ENDPOINT)

    def _vapid(self, origin: str) -> str:
        now = self._clock()
        cached = self._tokens.get(origin)
        if cached is not None and cached[0] <= now < cached[0] + JWT_REUSE:
            token = cached[1]
        else:
            claims = {"aud": origin, "exp": int(now) + JWT_LIFETIME, "sub": self._subject}
            token = jwt.encode(claims, self._key, algorithm="ES256")
            if len(self._tokens) >= _JWT_CACHE_SIZE:
                self._tokens = {o: t for o, t in self._tokens.items() if t[0] <= now < t[0] + JWT_REUSE}
                if len(self._tokens) >= _JWT_CACHE_SIZE:
                    self._tokens.clear()
            self._tokens[origin] = (now, token)
        return f"vapid t={token}, k={self._public}"

    async def send(
        self,
        target: PushTarget,
        payload: bytes,
        *,
        ttl: int = 86400,
        urgency: Urgency = "normal",
        topic: str | None = None,
    ) -> PushOutcome:
        """Encrypt ``payload`` for the subscription and hand it to its push service. A refused
        subscription raises InvalidInput and a bad argument ValueError; anything the push service (or
        the network) does is the outcome."""
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"a push payload is at most {MAX_PAYLOAD} bytes, not {len(payload)}")
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
            raise ValueError("ttl is a whole number of seconds, 0 or more")
        if urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {sorted(URGENCIES)}")
        if topic is not None and not _TOPIC.fullmatch(topic):
            raise ValueError("a topic is 1 to 32 characters of the base64url alphabet (RFC 8030 §5.4)")
        endpoint = _endpoint(target.endpoint, self._allowed)
        receiver = _receiver_key(target.p256dh)
        auth = _auth_secret(target.auth)

        headers = {"TTL": str(ttl), "Urgency": urgency, "Authorization": self._vapid(endpoint.origin)}
        if topic is not None:
            headers["Topic"] = topic
        body = b""
        if payload:  # no payload: a push with no body (RFC 8030 allows it) tells the browser to look
            body = http_ece.encrypt(
                payload,
                salt=os.urandom(16),
                private_key=ec.generate_private_key(ec.SECP256R1()),
                dh=receiver,
                auth_secret=auth,
                rs=RECORD_SIZE,
                version="aes128gcm",
            )
            headers["Content-Encoding"] = "aes128gcm"
            headers["Content-Type"] = "application/octet-stream"

        started = time.perf_counter()
        hiding = _sending.set(True)
        try:
            response = await self._client.post(endpoint.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return self._failed(endpoint, f"timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:  # refused, reset, DNS: the exception's text may hold the URL
            return self._failed(endpoint, f"no answer ({type(exc).__name__})")
        finally:
            _sending.reset(hiding)
        ms = round((time.perf_counter() - started) * 1000, 1)

        status = response.status_code
        ok = 200 <= status < 300
        gone = status in (404, 410)
        retry_after = (
            _retry_after(response.headers.get("retry-after"), self._clock()) if status in (429, 503) else None
        )
        error = ""
        if not ok:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = ""
            error = " ".join(p for p in (f"HTTP {status}", phrase) if p)
            if explanation := _explanation(response, endpoint.url):
                error = f"{error}: {explanation}"
        level = logging.DEBUG if ok else logging.INFO if gone else logging.WARNING
        log.log(
            level,
            "web push sent" if ok else "web push refused",
            extra={"host": endpoint.host, "status": status, "ms": ms, "bytes": len(body)},
        )
        return PushOutcome(ok, gone, status, error, retry_after)

    def _failed(self, endpoint: _Endpoint, error: str) -> PushOutcome:
        log.warning("web push not delivered", extra={"host": endpoint.host, "error": error})
        return PushOutcome(False, False, 0, error, None)

    async def close(self) -> None:
        await self._client.aclose()

"""A local push service for the tests, written from the RFCs and not from our client.

It plays the push service of RFC 8030 (it takes ``POST``s to its subscriptions' endpoints, wants a
``TTL``, checks ``Urgency`` and ``Topic``, answers ``201 Created`` with a ``Location``, or the status a
test sets), checks VAPID as RFC 8292 §4 has a push service check it (the JWT verified with joserfc, an
independent JOSE implementation, against the ``k=`` key; ``aud`` its own origin; ``exp`` ahead and no
more than 24 h ahead; ``sub`` present; ``k`` the key the subscription was made with), and plays the
browser too: it decrypts the body with its own RFC 8291 / RFC 8188 decrypter made of ``cryptography``
primitives only (ECDH, HMAC-SHA-256 for HKDF, AES-128-GCM), so what it records is what a browser would
read.

The same double answers over a real socket (:func:`serving`: uvicorn in a thread on a socket bound here
on 127.0.0.1) or in-process through :meth:`PushService.transport` (an ``httpx.MockTransport``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
import uvicorn
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- RFC 8291 §3.4 / RFC 8188 §2, written out step by step --------------------------------------------


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


class Keys(NamedTuple):
    """The intermediate values RFC 8291 Appendix A lists."""

    ecdh_secret: bytes
    prk_key: bytes
    ikm: bytes
    prk: bytes
    cek: bytes
    nonce: bytes


def derive(ua_private: ec.EllipticCurvePrivateKey, as_public: bytes, auth_secret: bytes, salt: bytes) -> Keys:
    ua_public = ua_private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public)
    ecdh_secret = ua_private.exchange(ec.ECDH(), sender)
    # PRK_key = HMAC-SHA-256(auth_secret, ecdh_secret); IKM = HMAC-SHA-256(PRK_key, key_info || 0x01)
    prk_key = _hmac_sha256(auth_secret, ecdh_secret)
    key_info = b"WebPush: info\x00" + ua_public + as_public
    ikm = _hmac_sha256(prk_key, key_info + b"\x01")
    # RFC 8188 §2.2 / §2.3: PRK = HMAC-SHA-256(salt, IKM); CEK and NONCE the first 16 and 12 octets of
    # HMAC-SHA-256(PRK, info || 0x01)
    prk = _hmac_sha256(salt, ikm)
    cek = _hmac_sha256(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac_sha256(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    return Keys(ecdh_secret, prk_key, ikm, prk, cek, nonce)


class DecryptError(Exception):
    pass


def decrypt(body: bytes, ua_private: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """A browser's side of RFC 8291: the aes128gcm header (salt, rs, idlen, keyid = the application
    server's ephemeral public key), then the single record, then the padding and its delimiter."""
    if len(body) < 21:
        raise DecryptError("shorter than the aes128gcm header")
    salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    as_public, record = body[21 : 21 + idlen], body[21 + idlen :]
    if idlen != 65 or as_public[:1] != b"\x04":
        raise DecryptError("keyid is not an uncompressed P-256 point (RFC 8291 §4)")
    if rs < 18:
        raise DecryptError("record size below 18 (RFC 8291 §4)")
    if len(record) > rs:
        raise DecryptError("more than one record (RFC 8291 §4: a push message is one record)")
    if len(record) < 17:
        raise DecryptError("record shorter than its tag and delimiter")
    try:
        keys = derive(ua_private, as_public, auth_secret, salt)
    except ValueError as exc:
        raise DecryptError(f"bad keyid: {exc}") from None
    try:
        # one record: its sequence number is 0, so its nonce is NONCE itself (RFC 8188 §2.3)
        plain = AESGCM(keys.cek).decrypt(keys.nonce, record, None)
    except Exception as exc:  # cryptography's InvalidTag
        raise DecryptError(f"authentication failed ({type(exc).__name__})") from None
    unpadded = plain.rstrip(b"\x00")
    if not unpadded or unpadded[-1] != 0x02:
        raise DecryptError("the last record does not end with the 0x02 delimiter (RFC 8188 §2)")
    return unpadded[:-1]


# --- the browser -------------------------------------------------------------------------------------


@dataclass
class UserAgent:
    """A browser's half of a subscription: its ECDH key pair and 16 random auth bytes."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        )

    @property
    def auth_b64(self) -> str:
        return b64url(self.auth)


# --- the push service ----------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the double answered
    refusal: str = ""  # why it refused, when it did
    plaintext: bytes | None = None
    claims: dict[str, Any] | None = None
    jwt: str = ""


@dataclass
class Subscription:
    user_agent: UserAgent
    application_server_key: str | None  # RFC 8292 §4.2: the key the subscription is restricted to


class PushService:
    """The double. ``answer`` sets what it says to the next push that passes its checks:
    ``(status, headers)``, e.g. ``(410, {})`` or ``(429, {"Retry-After": "120"})``."""

    def __init__(self, origin: str, *, clock: Any = time.time) -> None:
        self.origin = origin
        self.clock = clock
        self.subscriptions: dict[str, Subscription] = {}
        self.received: list[Received] = []
        self.answer: tuple[int, dict[str, str]] = (201, {})
        self.echo_path = False  # refusals quote the request's path back (as a careless service might)
        self._lock = threading.Lock()

    def subscribe(self, user_agent: UserAgent | None = None, *, application_server_key: str | None = None):
        """A new subscription: the browser's keys and the endpoint the service hands out for it."""
        user_agent = user_agent or UserAgent()
        token = b64url(os.urandom(32))
        path = f"/wpush/v2/{token}"
        self.subscriptions[path] = Subscription(user_agent, application_server_key)
        return f"{self.origin}{path}", user_agent

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.answer = (201, {})
            self.echo_path = False

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        """One request → (status, headers, body). ``headers`` keys are lower case."""
        record = Received(path, headers, body, 0)
        status, out, refusal = self._handle(method, path, headers, body, record)
        record.status, record.refusal = status, refusal
        with self._lock:
            self.received.append(record)
        text = refusal.encode()
        if status >= 300 and self.echo_path:
            text = f"{refusal or 'refused'} for {path}".encode()
        return status, out, text

    def _handle(self, method, path, headers, body, record: Received):
        if method != "POST":
            return 405, {}, "push messages are POSTed (RFC 8030 §5)"
        subscription = self.subscriptions.get(path)
        if subscription is None:
            return 404, {}, "no such subscription"
        # RFC 8030 §5.2: TTL is required
        if not re.fullmatch(r"[0-9]+", headers.get("ttl", "")):
            return 400, {}, "missing or bad TTL"
        if "urgency" in headers and headers["urgency"] not in ("very-low", "low", "normal", "high"):
            return 400, {}, "bad Urgency (RFC 8030 §5.3)"
        if "topic" in headers and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", headers["topic"]):
            return 400, {}, "bad Topic (RFC 8030 §5.4)"
        # RFC 8292 §3: Authorization: vapid t=<JWT>, k=<key>
        refusal = self._check_vapid(headers.get("authorization", ""), subscription, record)
        if refusal:
            return (403 if refusal.startswith("k ") else 401), {}, refusal
        if body:
            if headers.get("content-encoding") != "aes128gcm":
                return 415, {}, "the payload is not aes128gcm (RFC 8291 §4)"
            if len(body) > 4096:
                return 413, {}, "payload over 4096 octets (RFC 8030 §7.2)"
            try:
                record.plaintext = decrypt(
                    body, subscription.user_agent.private_key, subscription.user_agent.auth
                )
            except DecryptError as exc:
                return 400, {}, f"cannot decrypt: {exc}"
        else:
            record.plaintext = b""
        status, out = self.answer
        if status == 201:
            out = {"Location": f"{self.origin}/m/{b64url(os.urandom(12))}", **out}
        return status, out, ""

    def _check_vapid(self, value: str, subscription: Subscription, record: Received) -> str:
        match = re.fullmatch(r"vapid\s+(.+)", value.strip(), flags=re.IGNORECASE)
        if not match:
            return "no vapid Authorization"
        params: dict[str, str] = {}
        for item in match.group(1).split(","):
            name, sep, val = item.strip().partition("=")
            if not sep or name.lower() in params:
                return "bad vapid parameters"
            params[name.lower()] = val.strip()
        if set(params) != {"t", "k"}:
            return "vapid needs exactly t and k"
        try:
            point = unb64url(params["k"])
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            return "k is not a P-256 public key"
        if len(point) != 65:
            return "k is not an uncompressed point"
        if (
            subscription.application_server_key is not None
            and params["k"] != subscription.application_server_key
        ):
            return "k does not match the key the subscription was made with (RFC 8292 §4.2)"
        record.jwt = params["t"]
        try:
            token = jwt.decode(params["t"], ECKey.import_key(public), algorithms=["ES256"])
        except (JoseError, ValueError) as exc:
            return f"JWT does not verify ({type(exc).__name__})"
        claims = dict(token.claims)
        record.claims = claims
        now = self.clock()
        if token.header.get("alg") != "ES256":
            return "JWT not ES256"
        if claims.get("aud") != self.origin:
            return "aud is not this push service's origin"
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            return "no exp"
        if exp <= now:
            return "JWT expired"
        if exp > now + 24 * 3600:
            return "exp more than 24 hours ahead (RFC 8292 §2)"
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            return "sub is not a mailto: or https: URI"
        return ""

    # --- how it is reached --------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        """In-process: for an endpoint on any host (the origin given at construction)."""

        def reply(request: httpx.Request) -> httpx.Response:
            headers = {k.lower(): v for k, v in request.headers.items()}
            status, out, text = self.handle(
                request.method, request.url.raw_path.decode(), headers, request.read()
            )
            return httpx.Response(status, headers=out, content=text)

        return httpx.MockTransport(reply)

    async def __call__(self, scope, receive, send) -> None:
        """ASGI, for :func:`serving`."""
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, out, text = self.handle(scope["method"], scope["raw_path"].decode(), headers, body)
        raw = [(k.lower().encode(), v.encode()) for k, v in out.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": text})


@contextlib.contextmanager
def serving() -> Iterator[PushService]:
    """A push service on a real socket on 127.0.0.1 (a port the system picks). The socket is bound and
    listening before the server thread starts, so a connection made at once waits in its backlog."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    service = PushService(f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(service, log_level="warning", lifespan="off", access_log=False, http="h11")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

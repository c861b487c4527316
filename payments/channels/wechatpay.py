"""WeChat Pay API v3: its notifications, and the calls we make (prepay, query, close, refund, bills).

Verification follows WeChat's rules byte for byte: the message is
``Wechatpay-Timestamp + "\\n" + Wechatpay-Nonce + "\\n" + raw body + "\\n"``, signed SHA256withRSA
(PKCS#1 v1.5) by the platform key named by ``Wechatpay-Serial`` (several may be valid during rotation);
timestamps more than 5 minutes off are refused; ``WECHATPAY/SIGNTEST/`` probes are refused cleanly; the
``resource`` is AEAD_AES_256_GCM with the APIv3 key (12-byte nonce, associated data, 16-byte tag last).
The same check holds for every answer to our calls, which are signed with the merchant's API key
(``WECHATPAY2-SHA256-RSA2048`` Authorization over ``METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n``). The
platform keys are fetched from ``/v3/certificates`` (see :meth:`WeChatPay._refresh`). Our order and
refund ids are UUIDs: WeChat's out_trade_no is at most 32 characters, so they travel as 32 hex digits
and come back in their usual form (:func:`out_trade_no`, :func:`ours`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as time_of_day
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

import httpx
import msgspec
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from msgspec import Meta

from backend.edge import json_too_deep
from backend.errors import AppError, Conflict, InvalidInput, ServiceUnavailable
from backend.settings import decode_key
from payments.channels.base import (
    CALLBACK_MAX_DEPTH,
    Capability,
    Channel,
    ChannelContext,
    ChannelPlugin,
    Notification,
    NotificationRejected,
    Reply,
    SettingsProblem,
    Statement,
    StatementRow,
    channel_busy,
    channel_time,
)

log = logging.getLogger("shengshitong.payments.wechatpay")
CHINA = timezone(timedelta(hours=8))
AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
CERT_REFRESH_SECONDS = 12 * 3600  # the platform certificates are fetched again after this
UNKNOWN_SERIAL_INTERVAL = 60  # at most one fetch a minute for a serial we do not hold
# error codes that leave the outcome unknown: the same call is made again
TRANSIENT_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED", "SYSTEMERROR", "BANK_ERROR"})
# closing a trade WeChat says is paid
PAID_CODES = frozenset({"ORDER_PAID", "ORDERPAID", "TRADE_PAID"})
# a bill asked for before WeChat has it
NO_BILL_CODES = frozenset({"NO_STATEMENT_EXIST", "STATEMENT_CREATING", "NO_STATEMENT_EXISTS"})
WINDOW_SECONDS = 300
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
# refund events and the refund_status each carries
REFUND_EVENTS = {"REFUND.SUCCESS": "SUCCESS", "REFUND.ABNORMAL": "ABNORMAL", "REFUND.CLOSED": "CLOSED"}
# transaction events and what each one is
TRANSACTION_EVENTS: dict[str, Literal["payment", "closed"]] = {
    "TRANSACTION.SUCCESS": "payment",
    "TRANSACTION.CLOSED": "closed",
}


# The notification as WeChat sends it: read into these types, so a body that is signed but malformed
# (``resource`` not an object, ``nonce`` a number, ...) is refused as ``bad_body``, never a 500.
class Resource(msgspec.Struct):
    algorithm: str
    ciphertext: str
    nonce: str
    associated_data: str = ""
    original_type: str = ""


class Envelope(msgspec.Struct):
    id: str
    event_type: str
    resource: Resource
    create_time: str = ""
    resource_type: str = ""
    summary: str = ""


class PaymentAmount(msgspec.Struct):
    total: int
    currency: str = "CNY"


class Transaction(msgspec.Struct):
    mchid: str
    out_trade_no: str
    trade_state: str
    amount: PaymentAmount
    appid: str = ""
    transaction_id: str = ""
    success_time: str | None = None


class RefundAmount(msgspec.Struct):
    refund: int
    total: int = 0


class RefundResource(msgspec.Struct):
    mchid: str
    out_trade_no: str
    out_refund_no: str
    refund_id: str
    refund_status: str
    amount: RefundAmount
    transaction_id: str = ""
    success_time: str | None = None


class RefundAnswerAmount(msgspec.Struct):
    refund: int
    total: int = 0
    currency: str = "CNY"


class RefundAnswer(msgspec.Struct):
    """What /v3/refund/domestic/refunds answers (its status is ``status``, a notice's ``refund_status``)."""

    refund_id: str
    out_refund_no: str
    out_trade_no: str
    status: str
    amount: RefundAnswerAmount
    transaction_id: str = ""
    success_time: str | None = None


class EncryptedCertificate(msgspec.Struct):
    algorithm: str
    nonce: str
    ciphertext: str
    associated_data: str = ""


class PlatformCertificate(msgspec.Struct):
    serial_no: str
    encrypt_certificate: EncryptedCertificate
    effective_time: str = ""
    expire_time: str = ""


class CertificateList(msgspec.Struct):
    data: list[PlatformCertificate]


class BillAnswer(msgspec.Struct):
    download_url: str
    hash_type: str = "SHA1"
    hash_value: str = ""


@dataclass(frozen=True)
class ApiConfig:
    """Where the API is and the merchant's key for it (SHENGSHI_WECHATPAY_API_BASE, _PRIVATE_KEY_FILE,
    _CERT_SERIAL, _TIMEOUT_SECONDS)."""

    base: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    cert_serial: str
    timeout: float = 10.0


def out_trade_no(ref: str) -> str:
    """Our order or refund id as WeChat gets it: a UUID as its 32 hex digits (out_trade_no is 6 to 32
    characters), anything else as it is."""
    try:
        return uuid.UUID(ref).hex if len(ref) == 36 else ref
    except ValueError:
        return ref


def ours(ref: str) -> str:
    """An out_trade_no or out_refund_no WeChat sends back, as our id: 32 hex digits are a UUID."""
    if len(ref) == 32:
        try:
            return str(uuid.UUID(hex=ref))
        except ValueError:
            return ref
    return ref


def _verifies(key: rsa.RSAPublicKey, signature: str, message: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class WeChatPay(Channel):
    name = "wechatpay"
    title_zh = "微信支付"
    pay_methods: ClassVar[tuple[str, ...]] = ("app", "jsapi", "native")
    bill_ready_at: ClassVar[time_of_day] = time_of_day(10, 0)  # WeChat's bills: from 10:00 the next day

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        apiv3_key: bytes,
        platform_keys: Mapping[str, rsa.RSAPublicKey],
        api: ApiConfig | None = None,
        notify_url: str = "",
        client: httpx.AsyncClient | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if len(apiv3_key) != 32:
            raise ValueError("the APIv3 key is 32 bytes")
        self.mchid = mchid
        self.appid = appid
        self._aead = AESGCM(apiv3_key)
        self._platform = dict(platform_keys)
        self._api = api
        self.notify_url = notify_url
        self._http = client
        # the wall clock: WeChat checks our timestamps against its own (never a test's frozen clock)
        self._now = now
        self._certs_at = float("-inf")  # when the platform certificates were last fetched
        self._unknown_at = float("-inf")  # when a fetch for an unknown serial was last made
        self._refresh_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def platform_serials(self) -> list[str]:
        """The serials of the platform keys held now (seeded and fetched)."""
        return sorted(self._platform)

    @staticmethod
    def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("a WeChat Pay platform key is RSA")
        return key

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> list[Notification]:
        h = {k.lower(): v for k, v in headers.items()}
        signature = h.get("wechatpay-signature", "")
        timestamp, nonce, serial = (
            h.get("wechatpay-timestamp", ""),
            h.get("wechatpay-nonce", ""),
            h.get("wechatpay-serial", ""),
        )
        if signature.startswith(PROBE_PREFIX):
            raise NotificationRejected("signature_probe", "WeChat Pay signature probe: refused as it must be")
        if not (signature and timestamp and nonce and serial):
            raise NotificationRejected("missing_headers", "Wechatpay-* signature headers are missing")
        if h.get("wechatpay-signature-type", "WECHATPAY2-SHA256-RSA2048") != "WECHATPAY2-SHA256-RSA2048":
            raise NotificationRejected("bad_signature_type", "unsupported Wechatpay-Signature-Type")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise NotificationRejected("bad_timestamp", "Wechatpay-Timestamp is not a number")
        if abs(now - int(timestamp)) > WINDOW_SECONDS:
            raise NotificationRejected(
                "stale_timestamp", "the notification's timestamp is more than 5 minutes off"
            )
        key = self._platform.get(serial)
        if key is None:
            self._refresh_soon()  # a rotation: the resend verifies once the new certificate is fetched
            raise NotificationRejected("unknown_serial", f"no platform key with serial {serial}")
        # the headers as they came (Litestar reads them as latin-1): non-ASCII ones simply do not verify
        message = timestamp.encode() + b"\n" + nonce.encode("utf-8", "replace") + b"\n" + body + b"\n"
        try:
            key.verify(
                base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, binascii.Error, ValueError):
            raise NotificationRejected("bad_signature", "the signature does not match the raw body") from None
        if json_too_deep(body, CALLBACK_MAX_DEPTH):  # the decoder would recurse until Python's limit
            raise NotificationRejected("bad_body", "the notification body is not a v3 notification")
        try:
            envelope = msgspec.json.decode(body, type=Envelope)
        except msgspec.DecodeError:
            raise NotificationRejected("bad_body", "the notification body is not a v3 notification") from None
        resource = envelope.resource
        if resource.algorithm != "AEAD_AES_256_GCM":
            raise NotificationRejected("bad_algorithm", "resource algorithm must be AEAD_AES_256_GCM")
        try:
            plain = self._aead.decrypt(
                resource.nonce.encode(),
                base64.b64decode(resource.ciphertext, validate=True),
                resource.associated_data.encode(),
            )
        except InvalidTag:
            raise NotificationRejected(
                "bad_ciphertext", "the resource does not decrypt with the APIv3 key"
            ) from None
        except (binascii.Error, ValueError):
            raise NotificationRejected("bad_body", "the resource is not a v3 encrypted resource") from None
        if json_too_deep(plain, CALLBACK_MAX_DEPTH):
            raise NotificationRejected("bad_body", "the decrypted resource is not a v3 resource")
        return [self._parse(envelope, plain)]

    def _parse(self, envelope: Envelope, plain: bytes) -> Notification:
        event = envelope.event_type
        try:
            if event in TRANSACTION_EVENTS:
                tx = msgspec.json.decode(plain, type=Transaction)
                # the event type says what the notice is; the trade state only confirms it: a
                # TRANSACTION.SUCCESS whose trade is not paid (NOTPAY, CLOSED, REFUND, ...) is neither a
                # payment nor a close, and is recorded and acknowledged
                kind: Literal["payment", "closed", "status"] = TRANSACTION_EVENTS[event]
                if kind == "payment" and tx.trade_state != "SUCCESS":
                    kind = "status"
                if kind == "payment" and not tx.transaction_id:
                    raise NotificationRejected("bad_body", "a payment without its transaction_id")
                return Notification(
                    channel=self.name,
                    notify_id=envelope.id,
                    kind=kind,
                    order_ref=ours(tx.out_trade_no),
                    amount=tx.amount.total,
                    channel_txn=tx.transaction_id,
                    currency=tx.amount.currency,
                    channel_time=channel_time(tx.success_time),
                    refusal=self._refusal(tx.mchid, tx.appid),
                    summary={
                        "event_type": event,
                        "trade_state": tx.trade_state,
                        "success_time": tx.success_time,
                    },
                )
            if event in REFUND_EVENTS:
                rf = msgspec.json.decode(plain, type=RefundResource)
                status = REFUND_EVENTS[event]
                if rf.refund_status != status:
                    raise NotificationRejected("bad_body", f"{event} with refund_status {rf.refund_status!r}")
                return Notification(
                    channel=self.name,
                    notify_id=envelope.id,
                    kind="refund" if status == "SUCCESS" else "refund_failed",
                    order_ref=ours(rf.out_trade_no),
                    amount=rf.amount.refund,
                    channel_txn=rf.refund_id,
                    refund_ref=ours(rf.out_refund_no),
                    payment_txn=rf.transaction_id,
                    failure="" if status == "SUCCESS" else status,
                    channel_time=channel_time(rf.success_time),
                    refusal=self._refusal(rf.mchid, None),
                    summary={"event_type": event, "success_time": rf.success_time},
                )
        except msgspec.DecodeError:
            raise NotificationRejected("bad_body", "the decrypted resource lacks required fields") from None
        raise NotificationRejected("unsupported_event", f"event {event!r} is not handled")

    def _refusal(self, mchid: str, appid: str | None) -> str:
        """A genuine notification naming another merchant or app is recorded and refused."""
        if mchid != self.mchid:
            return "merchant_mismatch"
        if appid is not None and appid != self.appid:
            return "app_mismatch"
        return ""

    def success(self) -> Reply:
        return Reply(status=204, body=b"", media_type="application/json")

    def failure(self, message: str, status: int = 400) -> Reply:
        return Reply(
            status=status, body=_json({"code": "FAIL", "message": message}), media_type="application/json"
        )

    # ---- calls to WeChat Pay's API v3 --------------------------------------------------------------
    def use_client(self, client: httpx.AsyncClient) -> None:
        """Send the API calls through ``client`` (tests hand in one over the local double's transport)."""
        self._http = client

    def _client(self) -> httpx.AsyncClient:
        if self._api is None:
            raise ServiceUnavailable(
                "paying by WeChat Pay needs the merchant's API key (SHENGSHI_WECHATPAY_PRIVATE_KEY_FILE "
                "and _CERT_SERIAL), which this deployment does not have; choose another channel",
                code="channel_unavailable",
                channel=self.name,
            )
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._api.timeout)
        return self._http

    def authorization(self, method: str, url: str, body: bytes, *, timestamp: str, nonce: str) -> str:
        """The Authorization header of a request: the merchant's key over
        ``METHOD\\nCANONICAL_URL\\ntimestamp\\nnonce\\nbody\\n`` (the canonical URL is the path and query as
        sent; a GET's body is empty)."""
        assert self._api is not None
        message = f"{method}\n{url}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = base64.b64encode(
            self._api.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        ).decode()
        return (
            f'{AUTH_SCHEMA} mchid="{self.mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{self._api.cert_serial}"'
        )

    def _sign(self, message: str) -> str:
        assert self._api is not None
        return base64.b64encode(
            self._api.private_key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
        ).decode()

    async def _send(self, method: str, url: str, body: bytes) -> httpx.Response:
        client = self._client()
        target = httpx.URL(url)
        canonical = target.raw_path.decode("ascii")
        headers = {
            "Authorization": self.authorization(
                method, canonical, body, timestamp=str(int(self._now())), nonce=secrets.token_hex(16).upper()
            ),
            "Accept": "application/json",
            "User-Agent": "shengshitong-wechatpay/1",
        }
        if method != "GET":
            headers["Content-Type"] = "application/json"
        try:
            return await client.request(
                method, target, content=body if method != "GET" else None, headers=headers
            )
        except httpx.HTTPError as exc:
            raise channel_busy(self.name, f"{method} {target.path}: {type(exc).__name__}") from None

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> tuple[int, Any]:
        """One signed call; its answer verified. Returns (status, decoded JSON or None). A 5xx, a
        transient error code, an unreachable or badly signed answer raise :func:`channel_busy`."""
        self._client()
        assert self._api is not None
        await self._refresh_if_due()
        body = _json(payload) if payload is not None else b""
        response = await self._send(method, self._api.base + path, body)
        if response.status_code >= 500:
            raise channel_busy(self.name, f"{method} {path.split('?')[0]} answered {response.status_code}")
        await self._verify_response(response, f"{method} {path.split('?')[0]}")
        data: Any = None
        if response.content:
            try:
                data = json.loads(response.content)
            except ValueError:
                raise channel_busy(self.name, f"{path.split('?')[0]} answered something not JSON") from None
        if response.status_code >= 400:
            code = data.get("code", "") if isinstance(data, dict) else ""
            if code in TRANSIENT_CODES or response.status_code == 429:
                raise channel_busy(self.name, f"{path.split('?')[0]} answered {code or response.status_code}")
        return response.status_code, data

    async def _verify_response(self, response: httpx.Response, what: str) -> None:
        h = response.headers
        timestamp = h.get("wechatpay-timestamp", "")
        nonce = h.get("wechatpay-nonce", "")
        signature = h.get("wechatpay-signature", "")
        serial = h.get("wechatpay-serial", "")
        if not (timestamp and nonce and signature and serial):
            raise channel_busy(self.name, f"{what}: the answer is not signed")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise channel_busy(self.name, f"{what}: the answer's timestamp is not a number")
        if abs(self._now() - int(timestamp)) > WINDOW_SECONDS:
            raise channel_busy(self.name, f"{what}: the answer's timestamp is more than 5 minutes off")
        key = self._platform.get(serial)
        if key is None and not what.startswith("GET /v3/certificates"):
            await self._refresh(unknown_serial=True)
            key = self._platform.get(serial)
        if key is None:
            raise channel_busy(self.name, f"{what}: the answer is signed by unknown platform key {serial}")
        if not _verifies(
            key, signature, timestamp.encode() + b"\n" + nonce.encode() + b"\n" + response.content + b"\n"
        ):
            raise channel_busy(self.name, f"{what}: the answer's signature does not verify")

    # ---- the platform keys, fetched from /v3/certificates ----------------------------------------------
    async def _refresh_if_due(self) -> None:
        if self._api is not None and self._now() - self._certs_at >= CERT_REFRESH_SECONDS:
            try:
                await self._refresh()
            except ServiceUnavailable:
                if not self._platform:
                    raise
                log.warning("wechatpay: the platform certificates could not be refreshed; the held keys stay")

    async def _refresh(self, *, unknown_serial: bool = False) -> None:
        """Fetch the platform certificates. Each ``encrypt_certificate`` is AEAD_AES_256_GCM under the
        APIv3 key: only WeChat and we hold that key, so a certificate that decrypts is WeChat's. The
        answer's signature must then verify by a key already held or by one of the certificates it
        carries (the first fetch without a seed folder, and a rotation whose new key signs the list)."""
        now = self._now()
        if unknown_serial and now - self._unknown_at < UNKNOWN_SERIAL_INTERVAL:
            return
        if unknown_serial:
            self._unknown_at = now
        async with self._refresh_lock:
            assert self._api is not None
            if not unknown_serial and self._now() - self._certs_at < CERT_REFRESH_SECONDS:
                return  # another call fetched them while this one waited
            response = await self._send("GET", self._api.base + "/v3/certificates", b"")
            if response.status_code != 200:
                raise channel_busy(self.name, f"GET /v3/certificates answered {response.status_code}")
            try:
                listing = msgspec.json.decode(response.content, type=CertificateList)
            except msgspec.DecodeError:
                raise channel_busy(self.name, "GET /v3/certificates: not a certificate list") from None
            fetched: dict[str, rsa.RSAPublicKey] = {}
            for item in listing.data:
                enc = item.encrypt_certificate
                try:
                    if enc.algorithm != "AEAD_AES_256_GCM":
                        raise ValueError(enc.algorithm)
                    pem = self._aead.decrypt(
                        enc.nonce.encode(), base64.b64decode(enc.ciphertext), enc.associated_data.encode()
                    )
                    public = x509.load_pem_x509_certificate(pem).public_key()
                except (InvalidTag, ValueError, binascii.Error):
                    raise channel_busy(
                        self.name,
                        f"platform certificate {item.serial_no} does not decrypt with the APIv3 key",
                    ) from None
                if not isinstance(public, rsa.RSAPublicKey):
                    raise channel_busy(self.name, f"platform certificate {item.serial_no} is not RSA")
                fetched[item.serial_no] = public
            serial = response.headers.get("wechatpay-serial", "")
            key = self._platform.get(serial) or fetched.get(serial)
            h = response.headers
            message = (
                h.get("wechatpay-timestamp", "").encode()
                + b"\n"
                + h.get("wechatpay-nonce", "").encode()
                + b"\n"
                + response.content
                + b"\n"
            )
            ts = h.get("wechatpay-timestamp", "")
            if (
                key is None
                or not (ts.isdigit() and abs(self._now() - int(ts)) <= WINDOW_SECONDS)
                or not _verifies(key, h.get("wechatpay-signature", ""), message)
            ):
                raise channel_busy(self.name, "GET /v3/certificates: the list's signature does not verify")
            self._platform.update(fetched)
            self._certs_at = self._now()
            log.info("wechatpay: platform certificates %s", ", ".join(sorted(fetched)))

    def _refresh_soon(self) -> None:
        """A notification named a serial we do not hold: fetch the certificates in the background (its
        resend then verifies)."""
        if self._api is None or self._now() - self._unknown_at < UNKNOWN_SERIAL_INTERVAL:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        async def refresh() -> None:
            try:
                await self._refresh(unknown_serial=True)
            except Exception:  # a background refresh only logs
                log.warning("wechatpay: the platform certificates could not be refreshed")

        task = loop.create_task(refresh())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- payments ------------------------------------------------------------------------------------
    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        """Prepay at /v3/pay/transactions/{app|jsapi|native} and answer what the citizen's app needs:
        app → the signed parameters of WeChat's OpenSDK; jsapi → those of ``wx.requestPayment`` (or
        WeixinJSBridge); native → the ``code_url`` a QR code shows."""
        method = order.get("method") or self.pay_methods[0]
        if method not in self.pay_methods:
            raise InvalidInput(
                f"wechatpay is paid by {', '.join(self.pay_methods)}, not {method!r}",
                code="unknown_pay_method",
                channel=self.name,
                available=list(self.pay_methods),
            )
        self._client()
        payload: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": (order.get("description") or "盛事通订单")[:127],
            "out_trade_no": out_trade_no(order["order_ref"]),
        }
        expires = order.get("expires_at")
        if isinstance(expires, datetime):
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
            payload["time_expire"] = expires.astimezone(CHINA).replace(microsecond=0).isoformat()
        payload["notify_url"] = self.notify_url
        payload["amount"] = {"total": order["amount"], "currency": "CNY"}
        if method == "jsapi":
            if not order.get("payer"):
                raise InvalidInput(
                    "paying by WeChat JSAPI needs the citizen's openid under our WeChat app (payer)",
                    code="payer_required",
                    channel=self.name,
                )
            payload["payer"] = {"openid": order["payer"]}
        status, data = await self._call("POST", f"/v3/pay/transactions/{method}", payload)
        if status != 200 or not isinstance(data, dict):
            raise self._refused(data, "the prepay")
        timestamp, nonce = str(int(self._now())), secrets.token_hex(16).upper()
        if method == "native":
            code_url = data.get("code_url")
            if not isinstance(code_url, str) or not code_url:
                raise channel_busy(self.name, "the native prepay answered no code_url")
            return {"method": method, "code_url": code_url}
        prepay_id = data.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise channel_busy(self.name, "the prepay answered no prepay_id")
        if method == "app":
            return {
                "method": method,
                "appid": self.appid,
                "partnerid": self.mchid,
                "prepayid": prepay_id,
                "package": "Sign=WXPay",
                "noncestr": nonce,
                "timestamp": timestamp,
                "sign": self._sign(f"{self.appid}\n{timestamp}\n{nonce}\n{prepay_id}\n"),
            }
        package = f"prepay_id={prepay_id}"
        return {
            "method": method,
            "appId": self.appid,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": self._sign(f"{self.appid}\n{timestamp}\n{nonce}\n{package}\n"),
        }

    def _refused(self, data: Any, what: str) -> AppError:
        """WeChat refused a call before doing anything (a 4xx with its code and message)."""
        code = data.get("code", "") if isinstance(data, dict) else ""
        message = data.get("message", "") if isinstance(data, dict) else ""
        return Conflict(
            f"WeChat Pay refused {what}: {code} {message}".strip(),
            code="channel_refused",
            channel=self.name,
            channel_code=str(code)[:64],
        )

    async def query_payment(self, order: dict[str, Any]) -> list[Notification]:
        ref = out_trade_no(order["order_ref"])
        status, data = await self._call(
            "GET",
            f"/v3/pay/transactions/out-trade-no/{quote(ref, safe='')}?mchid={quote(self.mchid, safe='')}",
        )
        if status == 404:
            return []  # ORDER_NOT_EXIST: never opened here
        if status != 200:
            raise self._refused(data, "the payment query")
        try:
            tx = msgspec.convert(data, Transaction)
        except msgspec.ValidationError:
            raise channel_busy(self.name, "the payment query answered no transaction") from None
        if tx.trade_state == "SUCCESS":
            if not tx.transaction_id:
                raise channel_busy(self.name, "a paid transaction without its transaction_id")
            kind: Literal["payment", "closed"] = "payment"
            notify_id = f"query:{tx.transaction_id}"
        elif tx.trade_state in ("CLOSED", "REVOKED"):
            kind, notify_id = "closed", f"query-closed:{tx.out_trade_no}"
        else:  # NOTPAY, USERPAYING, PAYERROR, REFUND (its refunds are told by their own notices)
            return []
        return [
            Notification(
                channel=self.name,
                notify_id=notify_id,
                kind=kind,
                order_ref=ours(tx.out_trade_no),
                amount=tx.amount.total,
                channel_txn=tx.transaction_id,
                currency=tx.amount.currency,
                channel_time=channel_time(tx.success_time),
                refusal=self._refusal(tx.mchid, tx.appid),
                summary={"query": "trade", "trade_state": tx.trade_state, "success_time": tx.success_time},
            ).checked()
        ]

    async def close_payment(self, order: dict[str, Any]) -> None:
        ref = out_trade_no(order["order_ref"])
        status, data = await self._call(
            "POST", f"/v3/pay/transactions/out-trade-no/{quote(ref, safe='')}/close", {"mchid": self.mchid}
        )
        if status in (200, 204):
            return
        code = data.get("code", "") if isinstance(data, dict) else ""
        if code in PAID_CODES:
            raise Conflict(
                "WeChat Pay says the trade is paid; it is queried and applied",
                code="channel_trade_paid",
                channel=self.name,
            )
        if status == 404 or code in ("ORDER_NOT_EXIST", "ORDER_CLOSED", "ORDERCLOSED"):
            return
        raise self._refused(data, "closing the trade")

    # ---- refunds -------------------------------------------------------------------------------------
    async def request_refund(
        self, refund: dict[str, Any]
    ) -> tuple[dict[str, str], bytes] | list[Notification] | None:
        payload: dict[str, Any] = {
            "out_trade_no": out_trade_no(refund["order_ref"]),
            "out_refund_no": out_trade_no(refund["refund_ref"]),
        }
        if refund.get("reason"):
            payload["reason"] = str(refund["reason"])[:80]
        payload["notify_url"] = self.notify_url
        payload["amount"] = {"refund": refund["amount"], "total": refund["total"], "currency": "CNY"}
        status, data = await self._call("POST", "/v3/refund/domestic/refunds", payload)
        if status != 200:
            raise self._refused(data, "the refund")
        return self._refund_answer(data)

    async def query_refund(self, refund: dict[str, Any]) -> list[Notification]:
        ref = out_trade_no(refund["refund_ref"])
        status, data = await self._call("GET", f"/v3/refund/domestic/refunds/{quote(ref, safe='')}")
        if status == 404:
            return []  # RESOURCE_NOT_EXISTS: the request never reached WeChat; it is asked again
        if status != 200:
            raise self._refused(data, "the refund query")
        return self._refund_answer(data)

    def _refund_answer(self, data: Any) -> list[Notification]:
        try:
            rf = msgspec.convert(data, RefundAnswer)
        except msgspec.ValidationError:
            raise channel_busy(self.name, "the refund answer is not a refund") from None
        if rf.status == "PROCESSING":
            return []
        if rf.status not in ("SUCCESS", "CLOSED", "ABNORMAL"):
            raise channel_busy(self.name, f"the refund answered status {rf.status!r}")
        ok = rf.status == "SUCCESS"
        return [
            Notification(
                channel=self.name,
                notify_id=f"query-refund:{rf.refund_id}:{rf.status}",
                kind="refund" if ok else "refund_failed",
                order_ref=ours(rf.out_trade_no),
                amount=rf.amount.refund,
                channel_txn=rf.refund_id,
                refund_ref=ours(rf.out_refund_no),
                payment_txn=rf.transaction_id,
                currency=rf.amount.currency,
                failure="" if ok else rf.status,
                channel_time=channel_time(rf.success_time) if ok else None,
                summary={"query": "refund", "status": rf.status, "success_time": rf.success_time},
            ).checked()
        ]

    # ---- bills ---------------------------------------------------------------------------------------
    async def _bill(self, path: str, what: str) -> bytes:
        status, data = await self._call("GET", path)
        code = data.get("code", "") if isinstance(data, dict) else ""
        if status != 200:
            if code in NO_BILL_CODES:
                raise ServiceUnavailable(
                    f"WeChat Pay's {what} is not out yet ({code})", code="bill_not_ready", channel=self.name
                )
            raise self._refused(data, f"the {what}")
        try:
            bill = msgspec.convert(data, BillAnswer)
        except msgspec.ValidationError:
            raise channel_busy(self.name, f"the {what} answered no download_url") from None
        assert self._api is not None
        where, base = httpx.URL(bill.download_url), httpx.URL(self._api.base)
        if (where.scheme, where.host, where.port) != (base.scheme, base.host, base.port):
            raise channel_busy(self.name, f"the {what}'s download_url is not on {base.host}")
        # the file is not signed: its hash (from the signed answer above) vouches for it
        status, raw = await self._download(bill.download_url, what)
        if status != 200:
            raise channel_busy(self.name, f"the {what} download answered {status}")
        if (
            bill.hash_type.upper() != "SHA1"
            or hashlib.sha1(raw, usedforsecurity=False).hexdigest() != bill.hash_value.lower()
        ):
            raise channel_busy(self.name, f"the {what} downloaded does not match its {bill.hash_type} hash")
        return raw

    async def _download(self, url: str, what: str) -> tuple[int, bytes]:
        """A bill file (a signed GET, as WeChat asks), read as it streams in: past
        :data:`BILL_MAX_BYTES` it is dropped, never held whole."""
        client = self._client()
        target = httpx.URL(url)
        headers = {
            "Authorization": self.authorization(
                "GET",
                target.raw_path.decode("ascii"),
                b"",
                timestamp=str(int(self._now())),
                nonce=secrets.token_hex(16).upper(),
            ),
            "User-Agent": "shengshitong-wechatpay/1",
        }
        try:
            async with client.stream("GET", target, headers=headers) as response:
                content = bytearray()
                async for chunk in response.aiter_bytes():
                    content += chunk
                    if len(content) > BILL_MAX_BYTES:
                        raise channel_busy(
                            self.name, f"the {what} download: more than {BILL_MAX_BYTES} bytes"
                        )
                return response.status_code, bytes(content)
        except httpx.HTTPError as exc:
            raise channel_busy(self.name, f"the {what} download: {type(exc).__name__}") from None

    async def download_bill(self, day: date) -> Statement:
        """The day's trade bill (bill_type ALL), checked against its SHA1 and its totals line."""
        raw = await self._bill(f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL", "trade bill")
        try:
            return parse_trade_bill(raw, day, channel=self.name)
        except BillError as exc:  # as WeChat published it: reported, and fetched again later
            raise ServiceUnavailable(
                f"WeChat Pay's trade bill of {day} cannot be used: {exc}",
                code="bill_invalid",
                channel=self.name,
            ) from None

    async def download_fund_flow_bill(self, day: date, account_type: str = "BASIC") -> list[dict[str, str]]:
        """The day's fund-flow bill of the merchant's ``account_type`` account (BASIC, OPERATION, FEES):
        its detail rows as WeChat names their columns, backticks taken off."""
        raw = await self._bill(
            f"/v3/bill/fundflowbill?bill_date={day.isoformat()}&account_type={quote(account_type, safe='')}",
            "fund-flow bill",
        )
        try:
            return read_bill(raw)[0]
        except BillError as exc:
            raise channel_busy(self.name, f"the fund-flow bill of {day} is unreadable: {exc}") from None


class WeChatPayAPI(WeChatPay):
    """WeChat Pay with its API configured: the platform asks it for refunds, queries, closes and bills."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.REFUNDS, Capability.QUERY, Capability.CLOSE, Capability.BILLS}
    )


# ---- WeChat's bills ------------------------------------------------------------------------------------
class BillError(ValueError):
    """A bill that cannot be read, or whose totals line does not add up to its rows."""


# The trade bill's detail columns (bill_type ALL), as WeChat's "交易账单文件格式说明" lists them
# (updated 2023-09-26):
#   交易时间, 公众账号ID, 商户号, 特约商户号, 设备号, 微信订单号, 商户订单号, 用户标识, 交易类型,
#   交易状态, 付款银行, 货币种类, 应结订单金额, 代金券金额, 微信退款单号, 商户退款单号, 退款金额,
#   充值券退款金额, 退款类型, 退款状态, 商品名称, 商户数据包, 手续费, 费率, 订单金额, 申请退款金额,
#   费率备注
# and its totals:
#   总交易单数, 应结订单总金额, 退款总金额, 充值券退款总金额, 手续费总金额, 订单总金额, 申请退款总金额
# Columns are read by their header's names (WeChat says the order may change); those below must be there.
TRADE_BILL_NEEDS = (
    "交易时间",
    "商户号",
    "特约商户号",
    "微信订单号",
    "商户订单号",
    "交易状态",
    "应结订单金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "手续费",
)
TRADE_TOTALS_NEEDS = ("总交易单数", "应结订单总金额", "退款总金额", "手续费总金额")


def _fields(line: str, n: int) -> list[str]:
    """A detail or totals line: every field prefixed by a backtick (so Excel keeps long numbers); a
    field may itself hold a comma, so the line is split at each comma followed by a backtick."""
    if not line.startswith("`"):
        raise BillError(f"line {n}: a field without its backtick")
    return line[1:].split(",`")


def read_bill(raw: bytes) -> tuple[list[dict[str, str]], dict[str, str]]:
    """A WeChat bill file (trade or fund flow): the header line, detail lines, the totals header and the
    totals line. Returns the detail rows and the totals, each keyed by its header's names."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BillError("the bill is not UTF-8") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if len(lines) < 3:
        raise BillError("a bill has a header, its detail lines, a totals header and a totals line")
    header = [name.strip().lstrip("\ufeff") for name in lines[0].split(",")]
    totals_header = [name.strip() for name in lines[-2].split(",")]
    if lines[-2].startswith("`") or not lines[-1].startswith("`"):
        raise BillError("the bill does not end with its totals header and totals line")
    rows = []
    for n, line in enumerate(lines[1:-2], start=2):
        values = _fields(line, n)
        if len(values) != len(header):
            raise BillError(f"line {n}: {len(values)} fields under a header of {len(header)}")
        rows.append(dict(zip(header, values, strict=True)))
    totals = _fields(lines[-1], len(lines))
    if len(totals) != len(totals_header):
        raise BillError(f"the totals line has {len(totals)} fields under a header of {len(totals_header)}")
    return rows, dict(zip(totals_header, totals, strict=True))


# the most a bill file may be (a city's busiest day is well under this); a larger download is dropped
BILL_MAX_BYTES = 256 << 20
BILL_YUAN = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")


def yuan_to_fen(value: str, what: str = "amount") -> int:
    """``12.34`` (yuan, as a bill writes it; ``-0.01`` for a fee given back) in fen, exactly. ASCII
    digits and a point only: Decimal alone would read full-width digits, ``1e3`` and ``1_000``."""
    text = value.strip() or "0"
    if not BILL_YUAN.fullmatch(text):
        raise BillError(f"{what} {value[:32]!r} is not an amount in yuan")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise BillError(f"{what} {value!r} is not an amount in yuan") from None
    fen = amount * 100
    if not amount.is_finite() or fen != fen.to_integral_value():
        raise BillError(f"{what} {value!r} is not a whole number of fen")
    return int(fen)


def parse_trade_bill(raw: bytes, day: date, *, channel: str = "wechatpay") -> Statement:
    """WeChat Pay's trade bill (bill_type ALL) as a :class:`Statement`. A row whose 交易状态 is SUCCESS is a
    payment (微信订单号, 商户订单号, 应结订单金额); REFUND is a refund (微信退款单号, 商户退款单号, 退款金额);
    REVOKED rows (a trade revoked before it was settled) move no money. The totals line must agree with the
    rows: 总交易单数 the number of rows, 应结订单总金额 the payments, 退款总金额 the refunds, 手续费总金额 the
    fees; a bill that does not add up raises :class:`BillError`."""
    rows, totals = read_bill(raw)
    if rows and (missing := [name for name in TRADE_BILL_NEEDS if name not in rows[0]]):
        raise BillError(f"the trade bill's header lacks {', '.join(missing)}")
    if missing := [name for name in TRADE_TOTALS_NEEDS if name not in totals]:
        raise BillError(f"the trade bill's totals lack {', '.join(missing)}")
    out: list[StatementRow] = []
    paid = refunded = fees = 0
    for n, row in enumerate(rows, start=2):
        state = row["交易状态"].strip()
        fee = yuan_to_fen(row["手续费"], f"line {n}: 手续费")
        fees += fee
        when = channel_time(row["交易时间"].strip().replace(" ", "T"), default_tz=CHINA)
        merchant = row["特约商户号"].strip() or row["商户号"].strip()
        if state == "SUCCESS":
            amount = yuan_to_fen(row["应结订单金额"], f"line {n}: 应结订单金额")
            paid += amount
            out.append(
                StatementRow(
                    txn_id=row["微信订单号"].strip(),
                    order_id=ours(row["商户订单号"].strip()),
                    type="payment",
                    amount=amount,
                    fee=fee,
                    channel_time=when,
                    merchant=merchant,
                )
            )
        elif state == "REFUND":
            amount = yuan_to_fen(row["退款金额"], f"line {n}: 退款金额")
            refunded += amount
            out.append(
                StatementRow(
                    txn_id=row["微信退款单号"].strip(),
                    order_id=ours(row["商户订单号"].strip()),
                    type="refund",
                    amount=amount,
                    refund_ref=ours(row["商户退款单号"].strip()),
                    fee=fee,
                    channel_time=when,
                    merchant=merchant,
                )
            )
        elif state != "REVOKED":
            raise BillError(f"line {n}: 交易状态 {state!r} is neither SUCCESS, REFUND nor REVOKED")
        if out and out[-1].amount < 0:
            raise BillError(f"line {n}: a negative amount")
    count_text = totals["总交易单数"].strip()
    if not (count_text.isascii() and count_text.isdigit()):
        raise BillError(f"总交易单数 {count_text!r} is not a number")
    stated = {
        "count": int(count_text),
        "payments": yuan_to_fen(totals["应结订单总金额"], "应结订单总金额"),
        "refunds": yuan_to_fen(totals["退款总金额"], "退款总金额"),
        "fees": yuan_to_fen(totals["手续费总金额"], "手续费总金额"),
    }
    counted = {"count": len(rows), "payments": paid, "refunds": refunded, "fees": fees}
    if wrong := [k for k in stated if stated[k] != counted[k]]:
        raise BillError(
            "the totals line does not add up: "
            + ", ".join(f"{k} {stated[k]} stated, {counted[k]} in the rows" for k in wrong)
        )
    return Statement(channel=channel, day=day, rows=out, totals=stated, raw=raw, media_type="text/csv")


class WeChatPaySettings(msgspec.Struct, frozen=True):
    """SHENGSHI_WECHATPAY_*: the merchant, its app, the APIv3 key, its API key and WeChat's platform keys."""

    mchid: str
    appid: str
    # 32 characters as WeChat's console shows it, or the 32 bytes in URL-safe base64 (never shown)
    apiv3_key: Annotated[str, Meta(pattern=r"^(?:.{32}|[A-Za-z0-9_-]{43}=?)\Z")]
    # <serial>.pem per platform public key: the seed the fetched certificates are first checked by, and
    # the only keys when the API is not configured (several during rotation)
    platform_keys_dir: str = ""
    api_base: str = "https://api.mch.weixin.qq.com"
    # the merchant's API private key (PEM, apiclient_key.pem) and its certificate's serial: with both,
    # the channel makes its calls; without, it takes notifications only (paying answers 503)
    private_key_file: str = ""
    cert_serial: str = ""
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0


def _apiv3_key(value: str) -> bytes:
    """The key as WeChat's console shows it (32 characters), or its bytes in URL-safe base64."""
    return value.encode() if len(value) == 32 else decode_key(value)


def _build(s: WeChatPaySettings, platform: ChannelContext) -> WeChatPay:
    problems = []
    keys: dict[str, rsa.RSAPublicKey] = {}
    api: ApiConfig | None = None
    if s.platform_keys_dir:
        keys_dir = Path(s.platform_keys_dir)
        if not keys_dir.is_dir():
            problems.append(
                f"SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR: {s.platform_keys_dir!r} is not a directory"
            )
        else:
            for path in sorted(keys_dir.glob("*.pem")):
                try:
                    keys[path.stem] = WeChatPay.load_public_key(path.read_bytes())
                except ValueError as exc:
                    problems.append(f"SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR: {path.name}: {exc}")
            if not keys and not problems and not s.private_key_file:
                problems.append(
                    f"SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR: no <serial>.pem in {s.platform_keys_dir!r}"
                )
    if s.private_key_file or s.cert_serial:
        if not (s.private_key_file and s.cert_serial):
            problems.append(
                "SHENGSHI_WECHATPAY_PRIVATE_KEY_FILE and SHENGSHI_WECHATPAY_CERT_SERIAL go together"
            )
        if not re.fullmatch(r"https?://[^/?#]+", s.api_base.rstrip("/")):
            problems.append(f"SHENGSHI_WECHATPAY_API_BASE: {s.api_base!r} is not a http(s) origin")
        private: rsa.RSAPrivateKey | None = None
        if s.private_key_file:
            try:
                loaded = serialization.load_pem_private_key(
                    Path(s.private_key_file).read_bytes(), password=None
                )
                if not isinstance(loaded, rsa.RSAPrivateKey):
                    raise ValueError("the merchant's API key is RSA")
                private = loaded
            except (OSError, ValueError, TypeError) as exc:
                problems.append(
                    f"SHENGSHI_WECHATPAY_PRIVATE_KEY_FILE: not a readable RSA private key ({exc})"
                )
        if private is not None and s.cert_serial:
            api = ApiConfig(
                base=s.api_base.rstrip("/"),
                private_key=private,
                cert_serial=s.cert_serial,
                timeout=s.timeout_seconds,
            )
    elif not s.platform_keys_dir:
        problems.append(
            "SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR: required when the API is not configured "
            "(SHENGSHI_WECHATPAY_PRIVATE_KEY_FILE)"
        )
    if problems:
        raise SettingsProblem(*problems)
    cls = WeChatPay if api is None else WeChatPayAPI
    return cls(
        mchid=s.mchid,
        appid=s.appid,
        apiv3_key=_apiv3_key(s.apiv3_key),
        platform_keys=keys,
        api=api,
        notify_url=platform.notify_url,
    )


PLUGIN = ChannelPlugin(
    channel=WeChatPay, settings=WeChatPaySettings, build=_build, secret_settings=frozenset({"apiv3_key"})
)

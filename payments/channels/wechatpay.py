"""WeChat Pay API v3 notifications (and the signed parameters the app needs to pay).

Verification follows WeChat's rules byte for byte: the message is
``Wechatpay-Timestamp + "\\n" + Wechatpay-Nonce + "\\n" + raw body + "\\n"``, signed SHA256withRSA
(PKCS#1 v1.5) by the platform key named by ``Wechatpay-Serial`` (several may be valid during rotation);
timestamps more than 5 minutes off are refused; ``WECHATPAY/SIGNTEST/`` probes are refused cleanly; the
``resource`` is AEAD_AES_256_GCM with the APIv3 key (12-byte nonce, associated data, 16-byte tag last).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from msgspec import Meta

from backend.edge import json_too_deep
from backend.errors import ServiceUnavailable
from backend.settings import decode_key
from payments.channels.base import (
    CALLBACK_MAX_DEPTH,
    Channel,
    ChannelContext,
    ChannelPlugin,
    Notification,
    NotificationRejected,
    Reply,
    SettingsProblem,
    channel_time,
)

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


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class WeChatPay(Channel):
    name = "wechatpay"
    title_zh = "微信支付"

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        apiv3_key: bytes,
        platform_keys: Mapping[str, rsa.RSAPublicKey],
    ) -> None:
        if len(apiv3_key) != 32:
            raise ValueError("the APIv3 key is 32 bytes")
        self.mchid = mchid
        self.appid = appid
        self._aead = AESGCM(apiv3_key)
        self._platform = dict(platform_keys)

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
                    order_ref=tx.out_trade_no,
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
                    order_ref=rf.out_trade_no,
                    amount=rf.amount.refund,
                    channel_txn=rf.refund_id,
                    refund_ref=rf.out_refund_no,
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

    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        """App payment needs a prepay id from WeChat's /v3/pay/transactions/app, a call to WeChat's servers
        that this deployment cannot make; the notification side above is complete."""
        raise ServiceUnavailable(
            "paying by WeChat Pay needs WeChat's prepay API, which this deployment cannot "
            "reach; choose another channel",
            code="channel_unavailable",
        )


class WeChatPaySettings(msgspec.Struct, frozen=True):
    """SHENGSHI_WECHATPAY_*: the merchant, its app, the APIv3 key, and WeChat's platform keys."""

    mchid: str
    appid: str
    # 32 characters as WeChat's console shows it, or the 32 bytes in URL-safe base64 (never shown)
    apiv3_key: Annotated[str, Meta(pattern=r"^(?:.{32}|[A-Za-z0-9_-]{43}=?)\Z")]
    platform_keys_dir: str  # <serial>.pem per platform public key (several during rotation)


def _apiv3_key(value: str) -> bytes:
    """The key as WeChat's console shows it (32 characters), or its bytes in URL-safe base64."""
    return value.encode() if len(value) == 32 else decode_key(value)


def _build(s: WeChatPaySettings, platform: ChannelContext) -> WeChatPay:
    problems = []
    keys_dir = Path(s.platform_keys_dir)
    keys: dict[str, rsa.RSAPublicKey] = {}
    if not keys_dir.is_dir():
        problems.append(f"SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR: {s.platform_keys_dir!r} is not a directory")
    else:
        for path in sorted(keys_dir.glob("*.pem")):
            try:
                keys[path.stem] = WeChatPay.load_public_key(path.read_bytes())
            except ValueError as exc:
                problems.append(f"SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR: {path.name}: {exc}")
        if not keys and not problems:
            problems.append(
                f"SHENGSHI_WECHATPAY_PLATFORM_KEYS_DIR: no <serial>.pem in {s.platform_keys_dir!r}"
            )
    if problems:
        raise SettingsProblem(*problems)
    return WeChatPay(mchid=s.mchid, appid=s.appid, apiv3_key=_apiv3_key(s.apiv3_key), platform_keys=keys)


PLUGIN = ChannelPlugin(
    channel=WeChatPay, settings=WeChatPaySettings, build=_build, secret_settings=frozenset({"apiv3_key"})
)

"""Alipay asynchronous notifications (RSA2) and the signed order string the app pays with.

Alipay has two signing rules, and they differ:

- a **notification** is verified over every parameter but ``sign`` and ``sign_type``, sorted by key,
  joined ``k=v`` with ``&`` (values as decoded from the form), empty values included (as Alipay's own
  SDKs do), with SHA256withRSA and Alipay's public key;
- a **request** (the order string the app hands to the Alipay SDK) is signed over every non-empty
  parameter but ``sign``, so ``sign_type`` is signed too, with the app's private key.

The reply is the plain text ``success``; anything else makes Alipay resend (about 8 times over 25
hours, with the same ``notify_id``).

Refund notifications carry ``refund_fee``, the trade's **total** refunded so far (not this refund's
amount); the payment centre turns it into an increment against what it has already booked.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from backend.errors import ServiceUnavailable
from payments.channels.base import (
    Channel,
    ChannelContext,
    ChannelPlugin,
    Notification,
    NotificationRejected,
    Reply,
    SettingsProblem,
    channel_time,
)

CHINA = timezone(timedelta(hours=8))


# an amount as Alipay writes one: yuan, at most two decimals (``10``, ``10.5``, ``10.50``); nothing else
# (no sign, exponent, NaN, Infinity, digits of another script) is an amount
YUAN = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,2}))?")


def yuan_to_fen(value: str) -> int:
    m = YUAN.fullmatch(value)
    if m is None:
        raise NotificationRejected("bad_amount", f"not an amount in yuan: {value[:32]!r}")
    return int(m.group(1)) * 100 + int((m.group(2) or "").ljust(2, "0"))


def fen_to_yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def notification_signing_string(params: Mapping[str, str]) -> str:
    """What Alipay signed in a notification: all but ``sign`` and ``sign_type``, empty values kept."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))


def request_signing_string(params: Mapping[str, str]) -> str:
    """What an app signs in a request: every non-empty parameter but ``sign`` (``sign_type`` included)."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


class Alipay(Channel):
    name = "alipay"
    title_zh = "支付宝"

    def __init__(
        self,
        *,
        app_id: str,
        seller_id: str,
        alipay_public_key: rsa.RSAPublicKey,
        app_private_key: rsa.RSAPrivateKey | None = None,
        notify_url: str = "",
    ) -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self._alipay_key = alipay_public_key
        self._app_key = app_private_key
        self.notify_url = notify_url

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> list[Notification]:
        try:
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("bad_body", "not a form-encoded Alipay notification") from None
        sign = params.get("sign", "")
        if not sign or params.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected("bad_signature", "missing sign or sign_type is not RSA2")
        try:
            self._alipay_key.verify(
                base64.b64decode(sign, validate=True),
                notification_signing_string(params).encode("utf-8"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            raise NotificationRejected(
                "bad_signature", "the signature does not match the parameters"
            ) from None
        try:
            notify_id, order_ref, trade_no = params["notify_id"], params["out_trade_no"], params["trade_no"]
            status = params["trade_status"]
        except KeyError:
            raise NotificationRejected("bad_body", "required notification fields are missing") from None
        summary = {"trade_status": status, "gmt_payment": params.get("gmt_payment")}
        # genuine, but for another app or merchant: recorded and refused by the payment centre
        refusal = ""
        if params.get("app_id") != self.app_id:
            refusal = "app_mismatch"
        elif params.get("seller_id") != self.seller_id:
            refusal = "merchant_mismatch"
        refunded = yuan_to_fen(params["refund_fee"]) if params.get("refund_fee") else 0
        if refunded > 0:  # a refund (a partial one, or TRADE_CLOSED after a full one): the running total
            out_biz_no = params.get("out_biz_no", "")
            summary["gmt_refund"] = params.get("gmt_refund")
            return [
                Notification(
                    channel=self.name,
                    notify_id=notify_id + "/refund",
                    kind="refund",
                    order_ref=order_ref,
                    amount=refunded,
                    cumulative=True,
                    channel_txn=f"{trade_no}/{out_biz_no or notify_id}",
                    refund_ref=out_biz_no,
                    payment_txn=trade_no,
                    channel_time=channel_time(params.get("gmt_refund"), default_tz=CHINA),
                    refusal=refusal,
                    summary=summary,
                )
            ]
        if status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            kind: Literal["payment", "closed"] = "payment"
        elif status == "TRADE_CLOSED":
            kind = "closed"
        else:  # WAIT_BUYER_PAY and the like: acknowledged, nothing to do
            return []
        return [
            Notification(
                channel=self.name,
                notify_id=notify_id,
                kind=kind,
                order_ref=order_ref,
                amount=yuan_to_fen(params.get("total_amount", "0" if kind == "closed" else "")),
                channel_txn=trade_no,
                channel_time=channel_time(params.get("gmt_payment"), default_tz=CHINA),
                refusal=refusal,
                summary=summary,
            )
        ]

    def success(self) -> Reply:
        return Reply(status=200, body=b"success", media_type="text/plain")

    def failure(self, message: str, status: int = 400) -> Reply:
        return Reply(status=status, body=b"fail", media_type="text/plain")

    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        """The signed order string for alipay.trade.app.pay, which the app passes to the Alipay SDK."""
        if self._app_key is None:
            raise ServiceUnavailable("Alipay is not configured for payments here", code="channel_unavailable")
        biz = {
            "out_trade_no": order["order_ref"],
            "total_amount": fen_to_yuan(order["amount"]),
            "subject": order["description"] or "盛事通",
            "product_code": "QUICK_MSECURITY_PAY",
        }
        params = {
            "app_id": self.app_id,
            "method": "alipay.trade.app.pay",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": datetime.now(UTC).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "notify_url": self.notify_url,
            # written as Alipay's SDKs write it (python-alipay-sdk: json.dumps with ensure_ascii, so a
            # Chinese subject travels as \u escapes of four hex digits): the order string is then theirs
            # byte for byte
            "biz_content": json.dumps(biz, separators=(",", ":")),
        }
        signed = request_signing_string(params)
        sign = base64.b64encode(self._app_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256()))
        # form-encoded as Alipay's SDKs do: the signed parameters in order, then the signature
        items = [(k, params[k]) for k in sorted(params) if params[k] != ""] + [("sign", sign.decode())]
        return {"order_string": "&".join(f"{k}={quote_plus(v)}" for k, v in items)}


class AlipaySettings(msgspec.Struct, frozen=True):
    """SHENGSHI_ALIPAY_*: the app, the merchant, Alipay's public key and the app's private key (files
    holding PEM keys; never in the repo)."""

    app_id: str
    seller_id: str  # the merchant's Alipay user id (2088...): notifications must name it
    public_key_file: str
    app_private_key_file: str = ""  # without it, paying by Alipay is refused (notifications still work)


def _key_file(var: str, path: str, private: bool) -> Any:
    try:
        data = Path(path).read_bytes()
        key = (
            serialization.load_pem_private_key(data, None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except OSError as exc:
        raise SettingsProblem(f"{var}: cannot read {path!r}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise SettingsProblem(
            f"{var}: {path!r} is not a PEM {'private' if private else 'public'} key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey if private else rsa.RSAPublicKey):
        raise SettingsProblem(f"{var}: {path!r} is not an RSA key")
    return key


def _build(s: AlipaySettings, platform: ChannelContext) -> Alipay:
    problems: list[str] = []
    keys: list[Any] = []
    for var, path, private in (
        ("SHENGSHI_ALIPAY_PUBLIC_KEY_FILE", s.public_key_file, False),
        ("SHENGSHI_ALIPAY_APP_PRIVATE_KEY_FILE", s.app_private_key_file, True),
    ):
        try:
            keys.append(_key_file(var, path, private) if path else None)
        except SettingsProblem as exc:
            problems += exc.problems
    if problems:
        raise SettingsProblem(*problems)
    return Alipay(
        app_id=s.app_id,
        seller_id=s.seller_id,
        alipay_public_key=keys[0],
        app_private_key=keys[1],
        notify_url=platform.notify_url,
    )


PLUGIN = ChannelPlugin(channel=Alipay, settings=AlipaySettings, build=_build)

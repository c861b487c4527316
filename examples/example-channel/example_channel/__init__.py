"""An example payment channel from outside the platform: "Example Bank", an aggregator of bank cards.

Everything the platform needs is here and in this package's entry point (pyproject.toml); no platform
file names it. Enable it with ``SHENGSHI_PAYMENT_CHANNELS=...,examplebank`` and its own settings:

- ``SHENGSHI_EXAMPLEBANK_MERCHANT_ID``: our merchant number at the bank (notices must name it);
- ``SHENGSHI_EXAMPLEBANK_NOTIFY_KEY``: the shared key, at least 32 bytes in URL-safe base64 (secret);
- ``SHENGSHI_EXAMPLEBANK_CHECKOUT_URL``: the bank's hosted checkout page the citizen is sent to;
- ``SHENGSHI_EXAMPLEBANK_API_URL``: the bank's API (refunds are asked there);
- ``SHENGSHI_EXAMPLEBANK_WINDOW_SECONDS``: how far a notice's timestamp may be off (default 300).

The bank's protocol: a notice is JSON, POSTed to ``/api/v1/payments/notify/examplebank`` with
``Examplebank-Timestamp: <unix seconds>`` and ``Examplebank-Signature: v1=<hex HMAC-SHA256 over
"<timestamp>.<raw body>">``; the answer is ``{"received": true}`` (anything else makes the bank resend).
A refund request is the same signature over a JSON body POSTed to ``<API_URL>/refunds``; the bank
answers 202 and confirms with a ``refund.succeeded`` (or ``refund.failed``) notice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import httpx
import msgspec
from msgspec import Meta

# the channel contract is all it imports from the platform
from payments.channels.base import (
    CALLBACK_MAX_DEPTH,
    Capability,
    Channel,
    ChannelContext,
    ChannelPlugin,
    InvalidInput,
    Notification,
    NotificationRejected,
    Reply,
    ServiceUnavailable,
    SettingsProblem,
    channel_time,
    decode_key,
    json_too_deep,
)

log = logging.getLogger("example_channel")

NAME = "examplebank"
TIMESTAMP_HEADER = "Examplebank-Timestamp"
SIGNATURE_HEADER = "Examplebank-Signature"


class ExampleBankSettings(msgspec.Struct, frozen=True):
    """SHENGSHI_EXAMPLEBANK_*"""

    merchant_id: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
    notify_key: str  # URL-safe base64, at least 32 bytes (never shown)
    checkout_url: str
    api_url: str
    window_seconds: Annotated[int, Meta(ge=30, le=900)] = 300


# A notice as the bank sends it: read into these types, so a signed but malformed body is refused as
# bad_body, never an error.
class Notice(msgspec.Struct, frozen=True):
    id: str
    type: Literal["payment.succeeded", "payment.closed", "refund.succeeded", "refund.failed"]
    merchant_id: str
    order_no: str
    amount: Annotated[int, Meta(ge=0)]  # fen
    txn_id: str
    currency: str = "CNY"
    refund_no: str = ""  # our refund id (a refund asked here), or empty (one made at the bank's desk)
    payment_txn_id: str = ""  # refunds: the bank's id of the payment refunded
    at: str | None = None  # when the money moved, ISO 8601 with an offset
    failure: str = ""  # refund.failed: the bank's reason


KINDS: dict[str, Literal["payment", "closed", "refund", "refund_failed"]] = {
    "payment.succeeded": "payment",
    "payment.closed": "closed",
    "refund.succeeded": "refund",
    "refund.failed": "refund_failed",
}


def sign(key: bytes, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


class ExampleBank(Channel):
    name = NAME
    title_zh = "示例银行"
    capabilities = frozenset({Capability.REFUNDS})

    def __init__(
        self,
        settings: ExampleBankSettings,
        key: bytes,
        platform: ChannelContext,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.merchant_id = settings.merchant_id
        self._key = key
        self._window = settings.window_seconds
        self._checkout = settings.checkout_url
        self._api = settings.api_url.rstrip("/")
        self._notify_url = platform.notify_url
        self._now = platform.now
        # how requests reach the bank (tests play the bank with an httpx.MockTransport)
        self.transport = transport

    # ---- notices ---------------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> list[Notification]:
        h = {k.lower(): v for k, v in headers.items()}
        ts = h.get(TIMESTAMP_HEADER.lower(), "")
        given = h.get(SIGNATURE_HEADER.lower(), "")
        if not (ts.isascii() and ts.isdigit() and len(ts) <= 12) or not given:
            raise NotificationRejected(
                "missing_signature", f"{SIGNATURE_HEADER} or {TIMESTAMP_HEADER} is missing or malformed"
            )
        if abs(now - int(ts)) > self._window:
            raise NotificationRejected("stale_timestamp", "the notice's timestamp is too far from now")
        # compared as bytes: a header holding non-ASCII text is a wrong signature, not an error
        if not hmac.compare_digest(sign(self._key, ts, body).encode(), given.encode("utf-8", "replace")):
            raise NotificationRejected("bad_signature", "the signature does not match the raw body")
        if json_too_deep(body, CALLBACK_MAX_DEPTH):  # the decoder would recurse until Python's limit
            raise NotificationRejected("bad_body", "not an Example Bank notice")
        try:
            notice = msgspec.json.decode(body, type=Notice)
        except msgspec.DecodeError:
            raise NotificationRejected("bad_body", "not an Example Bank notice") from None
        kind = KINDS[notice.type]
        return [
            Notification(
                channel=self.name,
                notify_id=notice.id,
                kind=kind,
                order_ref=notice.order_no,
                amount=notice.amount,
                channel_txn=notice.txn_id,
                refund_ref=notice.refund_no,
                payment_txn=notice.payment_txn_id,
                currency=notice.currency,
                failure=notice.failure[:64] if kind == "refund_failed" else "",
                channel_time=channel_time(notice.at),
                # genuine, but for another merchant: recorded and refused by the payment centre
                refusal="" if notice.merchant_id == self.merchant_id else "merchant_mismatch",
                summary={"type": notice.type, "at": notice.at},
            )
        ]

    def success(self) -> Reply:
        return Reply(status=200, body=b'{"received":true}', media_type="application/json")

    def failure(self, message: str, status: int = 400) -> Reply:
        body = json.dumps({"received": False, "error": message}).encode()
        return Reply(status=status, body=body, media_type="application/json")

    # ---- paying and refunding --------------------------------------------------------------------
    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        """The bank's checkout page for this order, signed so the bank knows the order is ours."""
        params = {
            "merchant_id": self.merchant_id,
            "order_no": order["order_ref"],
            "amount": str(order["amount"]),
            "notify_url": self._notify_url,
            "ts": str(int(self._now())),
        }
        query = urlencode(sorted(params.items()))
        signature = sign(self._key, params["ts"], query.encode()).removeprefix("v1=")
        return {"checkout_url": f"{self._checkout}?{query}&signature={signature}"}

    async def request_refund(self, refund: dict[str, Any]) -> None:
        """Ask the bank to refund (202); it confirms with a notice. Asking twice with one refund_no
        refunds once at the bank."""
        body = json.dumps(
            {
                "merchant_id": self.merchant_id,
                "order_no": refund["order_ref"],
                "refund_no": refund["refund_ref"],
                "payment_txn_id": refund["channel_txn"],
                "amount": refund["amount"],
            },
            separators=(",", ":"),
        ).encode()
        ts = int(self._now())
        headers = {
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(self._key, ts, body),
            "Content-Type": "application/json",
        }
        async with httpx.AsyncClient(transport=self.transport, timeout=10) as http:
            try:
                r = await http.post(f"{self._api}/refunds", content=body, headers=headers)
            except httpx.ConnectError:  # never reached the bank: the refund never was
                raise ServiceUnavailable(
                    "Example Bank cannot be reached; ask again later", code="channel_unavailable"
                ) from None
            except httpx.TransportError:
                # sent, but no answer: the outcome is unknown. The refund stays pending (its notice
                # completes it); asking again with the same reference is safe (one refund_no, one refund)
                log.warning("Example Bank did not answer a refund", extra={"order": refund["order_ref"]})
                return None
        if 400 <= r.status_code < 500:  # the bank said no before doing anything
            raise InvalidInput(f"Example Bank refused the refund ({r.status_code})")
        if r.status_code >= 500:  # as above: unknown, stays pending
            log.warning("Example Bank failed a refund request", extra={"status": r.status_code})
        return None


def _build(s: ExampleBankSettings, platform: ChannelContext) -> ExampleBank:
    problems = []
    try:
        key = decode_key(s.notify_key)
    except (ValueError, UnicodeError):
        key = b""
    if len(key) < 32:
        problems.append("SHENGSHI_EXAMPLEBANK_NOTIFY_KEY: must be at least 32 bytes in URL-safe base64")
    for var, url in (("CHECKOUT_URL", s.checkout_url), ("API_URL", s.api_url)):
        secure = url.startswith("https://")
        if not (secure or (platform.env != "prod" and url.startswith("http://"))):
            problems.append(f"SHENGSHI_EXAMPLEBANK_{var}: an https:// URL, got {url!r}")
    if problems:
        raise SettingsProblem(*problems)
    return ExampleBank(s, key, platform)


PLUGIN = ChannelPlugin(
    channel=ExampleBank,
    settings=ExampleBankSettings,
    build=_build,
    secret_settings=frozenset({"notify_key"}),
)

__all__ = ["NAME", "PLUGIN", "ExampleBank", "ExampleBankSettings", "sign"]

"""The sandbox channel: the whole flow locally, with its own signed callbacks.

A sandbox callback is JSON, signed like our outgoing webhooks: header
``Sandbox-Signature: t=<unix>,v1=<hex HMAC-SHA256 over "t.raw_body">`` with a key derived from the
service's secret. ``pay`` returns ``pay_url``, the sandbox's payment page (``GET /sandbox/pay/{id}``,
a web face: console/); paying there (it calls POST ``/api/v1/payments/sandbox/orders/{id}/pay``)
makes the sandbox send a signed callback to the same notify endpoint a real channel uses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from backend.edge import json_too_deep
from payments.channels.base import (
    CALLBACK_MAX_DEPTH,
    Callback,
    Capability,
    Channel,
    ChannelContext,
    ChannelPlugin,
    NoSettings,
    Notification,
    NotificationRejected,
    Reply,
)

WINDOW_SECONDS = 300
PAGE_PATH = "/sandbox/pay"  # the payment page a person opens: PAGE_PATH/<order id>


class Sandbox(Channel):
    name = "sandbox"
    title_zh = "沙箱支付"
    capabilities = frozenset({Capability.REFUNDS, Capability.DEFERRED_CHARGE, Capability.PAY_PAGE})
    for_production = False  # anyone could 'pay' through it

    def __init__(self, key: bytes, public_url: str, now: Callable[[], float] = time.time) -> None:
        self._key = key
        self._public_url = public_url.rstrip("/")
        self._now = now

    def sign(self, body: bytes, ts: int | None = None) -> str:
        t = int(self._now()) if ts is None else ts
        mac = hmac.new(self._key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={t},v1={mac}"

    def callback(self, event: dict[str, Any], ts: int | None = None) -> tuple[dict[str, str], bytes]:
        body = json.dumps({"id": "sbx_" + secrets.token_hex(8), **event}, separators=(",", ":")).encode()
        return {"Sandbox-Signature": self.sign(body, ts), "Content-Type": "application/json"}, body

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> list[Notification]:
        h = {k.lower(): v for k, v in headers.items()}
        parts = dict(p.split("=", 1) for p in h.get("sandbox-signature", "").split(",") if "=" in p)
        t = parts.get("t", "")
        if not (t.isascii() and t.isdigit() and len(t) <= 12):
            raise NotificationRejected("missing_signature", "Sandbox-Signature is missing or malformed")
        if abs(now - int(t)) > WINDOW_SECONDS:
            raise NotificationRejected(
                "stale_timestamp", "the callback's timestamp is more than 5 minutes off"
            )
        expected = hmac.new(self._key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        # compared as bytes: a header holding non-ASCII text is a wrong signature, not an error
        if not hmac.compare_digest(expected.encode(), parts.get("v1", "").encode("utf-8", "replace")):
            raise NotificationRejected("bad_signature", "the signature does not match the raw body")
        if json_too_deep(body, CALLBACK_MAX_DEPTH):
            raise NotificationRejected("bad_body", "not a sandbox callback")
        try:
            event = json.loads(body)
            kind = {"payment.succeeded": "payment", "refund.succeeded": "refund", "payment.closed": "closed"}[
                event["type"]
            ]
            return [
                Notification(
                    channel=self.name,
                    notify_id=event["id"],
                    kind=kind,  # type: ignore[arg-type]
                    order_ref=event["order_id"],
                    amount=int(event["amount"]),
                    channel_txn=event["txn_id"],
                    refund_ref=event.get("refund_id", ""),
                    summary={"type": event["type"]},
                )
            ]
        except (KeyError, TypeError, ValueError):
            raise NotificationRejected("bad_body", "not a sandbox callback") from None

    def success(self) -> Reply:
        return Reply(status=200, body=b'{"ok":true}', media_type="application/json")

    def failure(self, message: str, status: int = 400) -> Reply:
        return Reply(
            status=status,
            body=json.dumps({"ok": False, "message": message}).encode(),
            media_type="application/json",
        )

    async def request_refund(self, refund: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        """The sandbox refunds at once: here is its signed refund callback."""
        return self.callback(
            {
                "type": "refund.succeeded",
                "order_id": refund["order_ref"],
                "refund_id": refund["refund_ref"],
                "amount": refund["amount"],
                "txn_id": "sbx_rf_" + secrets.token_hex(6),
            }
        )

    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        return {
            "channel": "sandbox",
            "pay_url": f"{self._public_url}{PAGE_PATH}/{order['order_ref']}",
            "amount": order["amount"],
        }

    async def pay_on_page(self, order: dict[str, Any]) -> Callback:
        return self.callback(
            {
                "type": "payment.succeeded",
                "order_id": order["order_ref"],
                "amount": order["amount"],
                "txn_id": "sbx_" + order["order_ref"][:8],  # the same payment if paid twice
            }
        )

    async def charge_agreement(self, order: dict[str, Any]) -> Callback:
        """The sandbox debits at once: one transaction of the agreement per order."""
        return self.callback(
            {
                "type": "payment.succeeded",
                "order_id": order["order_ref"],
                "amount": order["amount"],
                "txn_id": f"sbx_agr_{order['order_ref'][:8]}",
            }
        )


def _build(settings: NoSettings, platform: ChannelContext) -> Sandbox:
    return Sandbox(platform.derived_key, platform.public_url, platform.now)


PLUGIN = ChannelPlugin(channel=Sandbox, settings=NoSettings, build=_build)

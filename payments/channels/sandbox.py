"""The sandbox channel: the whole flow locally, with its own signed callbacks.

A sandbox callback is JSON, signed like our outgoing webhooks: header
``Sandbox-Signature: t=<unix>,v1=<hex HMAC-SHA256 over "t.raw_body">`` with a key derived from the
service's secret. ``pay`` returns ``pay_url``, the sandbox's payment page (``GET /sandbox/pay/{id}``,
a web face: console/); paying there (it calls POST ``/api/v1/payments/sandbox/orders/{id}/pay``)
makes the sandbox send a signed callback to the same notify endpoint a real channel uses.

It keeps books of its own like a real channel (``sandbox_trade``: each trade, paid, closed, refunded), so
the payment centre's queries, closes and daily statement run against it too: ``query_payment`` and
``query_refund`` answer from them, ``close_payment`` closes an unpaid trade, and ``download_bill`` writes
the day's statement as its own CSV (``parse_bill`` reads it back). For demonstrations, a payment may
"lose" its notice (the trade is paid, no callback comes: the payment centre's query finds it), and
``SHENGSHI_SANDBOX_REFUNDS_PROCESSING=true`` makes refunds answer "processing" until asked about.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as clock_time
from typing import Any

import msgspec

from backend import db
from backend.edge import json_too_deep
from backend.errors import Conflict, NotFound
from payments.channels.base import (
    CALLBACK_MAX_DEPTH,
    Callback,
    Capability,
    Channel,
    ChannelContext,
    ChannelPlugin,
    Notification,
    NotificationRejected,
    Reply,
    ServiceUnavailable,
    Statement,
    StatementRow,
    channel_time,
)
from payments.tables import SandboxTrade

WINDOW_SECONDS = 300
PAGE_PATH = "/sandbox/pay"  # the payment page a person opens: PAGE_PATH/<order id>
CHINA = timezone(timedelta(hours=8))
# the sandbox's statement: one row per payment or refund that day (China time), then a totals line
BILL_FIELDS = ("txn_id", "order_id", "type", "amount_fen", "refund_ref", "time")


class SandboxSettings(msgspec.Struct, frozen=True):
    """SHENGSHI_SANDBOX_REFUNDS_PROCESSING: refunds answer "processing" and succeed when asked about
    (the payment centre's refund retries, shown in development and tests)."""

    refunds_processing: bool = False


class Sandbox(Channel):
    name = "sandbox"
    title_zh = "沙箱支付"
    capabilities = frozenset(
        {
            Capability.REFUNDS,
            Capability.DEFERRED_CHARGE,
            Capability.PAY_PAGE,
            Capability.QUERY,
            Capability.CLOSE,
            Capability.BILLS,
        }
    )
    for_production = False  # anyone could 'pay' through it
    bill_ready_at = clock_time(0, 30)  # its statement is out half an hour after the day ends

    def __init__(
        self,
        key: bytes,
        public_url: str,
        now: Callable[[], float] = time.time,
        *,
        refunds_processing: bool = False,
    ) -> None:
        self._key = key
        self._public_url = public_url.rstrip("/")
        self._now = now
        self.refunds_processing = refunds_processing

    def _when(self) -> datetime:
        return datetime.fromtimestamp(self._now(), UTC)

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
                    channel_time=channel_time(event.get("time")),
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

    # ---- the sandbox's books -------------------------------------------------------------------
    @staticmethod
    async def _trade(order_ref: str, *, lock: bool = False) -> dict[str, Any] | None:
        query = SandboxTrade.select().where(SandboxTrade.order_ref == order_ref)
        row = await (db.for_update(query) if lock else query).first().run()
        if row is None:
            return None
        row = dict(row)
        if isinstance(row["refunds"], str):
            row["refunds"] = json.loads(row["refunds"] or "[]")
        return row

    async def _open(self, order_ref: str, amount: int) -> None:
        await (
            SandboxTrade.insert(
                SandboxTrade(order_ref=order_ref, amount=amount, state="open", created_at=self._when())
            )
            .on_conflict(target=SandboxTrade.order_ref, action="DO NOTHING")
            .run()
        )

    async def _paid(self, order_ref: str, amount: int, txn: str) -> tuple[str, datetime]:
        """The trade paid (once: paying it again is the same payment); its transaction and time."""
        await self._open(order_ref, amount)
        now = self._when()
        await (
            SandboxTrade.update(
                {
                    SandboxTrade.state: "paid",
                    SandboxTrade.txn: txn,
                    SandboxTrade.amount: amount,
                    SandboxTrade.paid_at: now,
                }
            )
            .where((SandboxTrade.order_ref == order_ref) & (SandboxTrade.state == "open"))
            .run()
        )
        trade = await self._trade(order_ref)
        assert trade is not None
        if trade["state"] == "closed":
            raise Conflict(
                "the sandbox closed this trade; it can no longer be paid", code="channel_trade_closed"
            )
        return trade["txn"], trade["paid_at"]

    async def _pay(self, order: dict[str, Any], txn: str, *, lose_notice: bool = False) -> Callback | None:
        txn, when = await self._paid(order["order_ref"], order["amount"], txn)
        if lose_notice:
            return None  # paid here; the notice never leaves (the payment centre's query finds it)
        return self.callback(
            {
                "type": "payment.succeeded",
                "order_id": order["order_ref"],
                "amount": order["amount"],
                "txn_id": txn,
                "time": when.isoformat(),
            }
        )

    # ---- the channel's calls -----------------------------------------------------------------------
    async def request_refund(self, refund: dict[str, Any]) -> Callback | None:
        """The sandbox refunds at once (here is its signed refund callback), or, with
        ``refunds_processing``, answers "processing" and has it succeed when it is asked about. Asking
        again for one refund id refunds once."""
        async with db.transaction():
            trade = await self._trade(refund["order_ref"], lock=True)
            if trade is None or trade["state"] == "open":
                # paid by a callback made by hand (tests, demos) or before the sandbox kept books: the
                # payment centre knows it is paid, and the sandbox takes its word
                await self._open(refund["order_ref"], refund.get("total") or refund["amount"])
                await (
                    SandboxTrade.update(
                        {SandboxTrade.state: "paid", SandboxTrade.txn: refund.get("channel_txn") or ""}
                    )
                    .where((SandboxTrade.order_ref == refund["order_ref"]) & (SandboxTrade.state == "open"))
                    .run()
                )
                trade = await self._trade(refund["order_ref"], lock=True)
            assert trade is not None
            if trade["state"] == "closed":
                raise Conflict("the sandbox has no paid trade for this order", code="channel_trade_unpaid")
            entry = next((r for r in trade["refunds"] if r["refund_ref"] == refund["refund_ref"]), None)
            if entry is None:
                entry = {
                    "refund_ref": refund["refund_ref"],
                    "txn": "sbx_rf_" + secrets.token_hex(6),
                    "amount": refund["amount"],
                    "state": "processing" if self.refunds_processing else "succeeded",
                    "at": self._when().isoformat(),
                }
                refunds = [*trade["refunds"], entry]
                await self._save_refunds(trade, refunds)
        if entry["state"] == "processing":
            return None
        return self._refund_callback(refund["order_ref"], entry)

    @staticmethod
    async def _save_refunds(trade: dict[str, Any], refunds: list[dict[str, Any]]) -> None:
        done = sum(r["amount"] for r in refunds if r["state"] == "succeeded")
        await (
            SandboxTrade.update(
                {
                    SandboxTrade.refunds: refunds,
                    SandboxTrade.state: "refunded" if done >= trade["amount"] else trade["state"],
                }
            )
            .where(SandboxTrade.id == trade["id"])
            .run()
        )

    def _refund_callback(self, order_ref: str, entry: dict[str, Any]) -> Callback:
        return self.callback(
            {
                "type": "refund.succeeded",
                "order_id": order_ref,
                "refund_id": entry["refund_ref"],
                "amount": entry["amount"],
                "txn_id": entry["txn"],
                "time": entry["at"],
            }
        )

    async def query_payment(self, order: dict[str, Any]) -> list[Notification]:
        trade = await self._trade(order["order_ref"])
        if trade is None or trade["state"] == "open":
            return []
        if trade["state"] == "closed":
            return [self._told("closed", trade, f"query:closed:{trade['order_ref']}", trade["amount"])]
        return [
            self._told(
                "payment",
                trade,
                f"query:{trade['txn']}",
                trade["amount"],
                when=trade["paid_at"],
                txn=trade["txn"],
            )
        ]

    async def query_refund(self, refund: dict[str, Any]) -> list[Notification]:
        async with db.transaction():
            trade = await self._trade(refund["order_ref"], lock=True)
            entry = None
            if trade is not None:
                entry = next((r for r in trade["refunds"] if r["refund_ref"] == refund["refund_ref"]), None)
            if trade is None or entry is None:
                raise NotFound("the sandbox has no such refund", code="channel_refund_not_found")
            if entry["state"] == "processing":  # asked about: it has gone through now
                entry["state"] = "succeeded"
                entry["at"] = self._when().isoformat()
                await self._save_refunds(trade, trade["refunds"])
        return [
            self._told(
                "refund",
                trade,
                f"query:{entry['txn']}",
                entry["amount"],
                when=datetime.fromisoformat(entry["at"]),
                txn=entry["txn"],
                refund_ref=entry["refund_ref"],
            )
        ]

    def _told(
        self,
        kind: str,
        trade: dict[str, Any],
        notify_id: str,
        amount: int,
        *,
        when: datetime | None = None,
        txn: str = "",
        refund_ref: str = "",
    ) -> Notification:
        return Notification(
            channel=self.name,
            notify_id=notify_id,
            kind=kind,  # type: ignore[arg-type]
            order_ref=trade["order_ref"],
            amount=amount,
            channel_txn=txn or trade["txn"],
            refund_ref=refund_ref,
            payment_txn=trade["txn"] if kind == "refund" else "",
            channel_time=when.astimezone(UTC) if when is not None else None,
            summary={"type": f"query.{kind}"},
        )

    async def close_payment(self, order: dict[str, Any]) -> None:
        await self._open(order["order_ref"], order.get("amount", 0))
        await (
            SandboxTrade.update({SandboxTrade.state: "closed", SandboxTrade.closed_at: self._when()})
            .where((SandboxTrade.order_ref == order["order_ref"]) & (SandboxTrade.state == "open"))
            .run()
        )
        trade = await self._trade(order["order_ref"])
        if trade is not None and trade["state"] != "closed":
            raise Conflict("the sandbox's trade is paid", code="channel_trade_paid", channel=self.name)

    async def download_bill(self, day: date) -> Statement:
        ready = datetime.combine(day + timedelta(days=1), self.bill_ready_at, CHINA)
        if self._when() < ready:
            raise ServiceUnavailable(
                f"the sandbox's statement for {day} is not out yet", code="bill_not_ready"
            )
        start = datetime.combine(day, clock_time(0), CHINA)
        end = start + timedelta(days=1)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(BILL_FIELDS)
        count = payments = refunds = 0
        for trade in (
            await SandboxTrade.select().where(SandboxTrade.txn != "").order_by(SandboxTrade.paid_at).run()
        ):
            paid_at = trade["paid_at"]
            if paid_at is not None and start <= paid_at < end:
                writer.writerow(
                    [trade["txn"], trade["order_ref"], "payment", trade["amount"], "", paid_at.isoformat()]
                )
                count, payments = count + 1, payments + trade["amount"]
            listed = trade["refunds"]
            for r in json.loads(listed) if isinstance(listed, str) else listed:
                at = datetime.fromisoformat(r["at"])
                if r["state"] == "succeeded" and start <= at < end:
                    writer.writerow(
                        [r["txn"], trade["order_ref"], "refund", r["amount"], r["refund_ref"], r["at"]]
                    )
                    count, refunds = count + 1, refunds + r["amount"]
        writer.writerow(["#totals", count, payments, refunds, "", ""])
        return parse_bill(out.getvalue().encode(), day)

    # ---- paying ------------------------------------------------------------------------------------
    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        await self._open(order["order_ref"], order["amount"])
        return {
            "channel": "sandbox",
            "pay_url": f"{self._public_url}{PAGE_PATH}/{order['order_ref']}",
            "amount": order["amount"],
        }

    async def pay_on_page(self, order: dict[str, Any]) -> Callback:
        paid = await self._pay(order, "sbx_" + order["order_ref"][:8])  # the same payment if paid twice
        assert paid is not None
        return paid

    async def pay_losing_notice(self, order: dict[str, Any]) -> None:
        """(development) The citizen pays on the page, and the sandbox's notice is lost on the way."""
        await self._pay(order, "sbx_" + order["order_ref"][:8], lose_notice=True)

    async def charge_agreement(self, order: dict[str, Any]) -> Callback:
        """The sandbox debits at once: one transaction of the agreement per order."""
        paid = await self._pay(order, f"sbx_agr_{order['order_ref'][:8]}")
        assert paid is not None
        return paid


def parse_bill(raw: bytes, day: date) -> Statement:
    """The sandbox's statement file (its own CSV: :data:`BILL_FIELDS`, then a ``#totals`` line with the
    count, payments and refunds in fen) as a :class:`Statement`."""
    rows: list[StatementRow] = []
    totals: dict[str, int] = {}
    for n, line in enumerate(csv.reader(io.StringIO(raw.decode("utf-8-sig"))), start=1):
        if n == 1 or not line:
            continue
        if line[0] == "#totals":
            totals = {"count": int(line[1]), "payments": int(line[2]), "refunds": int(line[3])}
            continue
        try:
            txn, order_id, kind, amount, refund_ref, when = line[:6]
            rows.append(
                StatementRow(
                    txn_id=txn,
                    order_id=order_id,
                    type=kind,  # type: ignore[arg-type]
                    amount=int(amount),
                    refund_ref=refund_ref,
                    channel_time=channel_time(when),
                )
            )
        except (ValueError, TypeError):
            raise ValueError(f"line {n} of the sandbox statement is not a statement row") from None
    return Statement(channel="sandbox", day=day, rows=rows, totals=totals, raw=raw)


def _build(settings: SandboxSettings, platform: ChannelContext) -> Sandbox:
    return Sandbox(
        platform.derived_key,
        platform.public_url,
        platform.now,
        refunds_processing=settings.refunds_processing,
    )


PLUGIN = ChannelPlugin(channel=Sandbox, settings=SandboxSettings, build=_build)

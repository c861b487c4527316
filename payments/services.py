"""The payment centre: orders, refunds, the ledger, exactly-once callbacks, the outbox."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from backend import audit, db
from backend.clock import Clock
from backend.errors import Conflict, InvalidInput, NotFound
from payments.channels.base import Channel, Notification, NotificationRejected, Reply
from payments.channels.sandbox import Sandbox
from payments.tables import ChannelNotification, LedgerEntry, OutboxEvent, PaymentOrder, Refund

log = logging.getLogger("shengshitong.payments")
PAID_STATES = ("paid", "partially_refunded", "refunded")


def order_view(row: Mapping[str, Any], refunds: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "order_id": str(row["id"]),
        "reference": row["reference"],
        "app_id": row["app_id"],
        "owner": row["owner"],
        "amount": row["amount"],
        "currency": row["currency"],
        "state": row["state"],
        "deferred": row["deferred"],
        "channel": row["channel"],
        "refunded": row["refunded"],
        "description": row["description"],
        "created_at": row["created_at"],
        "paid_at": row["paid_at"],
        "closed_at": row["closed_at"],
        "expires_at": row["expires_at"],
        "refunds": [
            {
                "refund_id": str(r["id"]),
                "amount": r["amount"],
                "state": r["state"],
                "reason": r["reason"],
                "created_at": r["created_at"],
                "succeeded_at": r["succeeded_at"],
            }
            for r in refunds or []
        ],
    }


class OrderService:
    def __init__(self, clock: Clock, channels: dict[str, Channel], *, order_ttl: int = 1800) -> None:
        self.clock = clock
        self.channels = channels
        self.order_ttl = order_ttl
        # where a channel's immediate callback goes (the sandbox confirms refunds at once)
        self.callbacks: NotificationService | None = None

    async def create(
        self,
        *,
        owner: str,
        app_id: str,
        reference: str,
        amount: int,
        citizen_id: str | None,
        description: str,
        deferred: bool,
    ) -> tuple[dict[str, Any], bool]:
        """(order, created): creating the same reference twice returns the first order."""
        if amount <= 0:
            raise InvalidInput("amount must be a positive number of fen", code="invalid_amount")
        key = f"{owner}/{reference}"
        now = self.clock.now()
        existing = await PaymentOrder.select().where(PaymentOrder.owner_reference == key).first().run()
        if existing is None:
            # a concurrent twin of this request inserts nothing and is answered like a repeat
            created = await (
                PaymentOrder.insert(
                    PaymentOrder(
                        owner=owner,
                        app_id=app_id,
                        reference=reference,
                        owner_reference=key,
                        citizen_id=citizen_id,
                        description=description,
                        amount=amount,
                        deferred=deferred,
                        created_at=now,
                        updated_at=now,
                        expires_at=None if deferred else now + timedelta(seconds=self.order_ttl),
                    )
                )
                .on_conflict(target=PaymentOrder.owner_reference, action="DO NOTHING")
                .returning(PaymentOrder.id)
                .run()
            )
            existing = await PaymentOrder.select().where(PaymentOrder.owner_reference == key).first().run()
            assert existing is not None
            if created:
                return order_view(existing), True
        if existing["amount"] != amount or existing["citizen_id"] != citizen_id:
            raise Conflict(
                "this reference was used for a different order",
                code="reference_reused",
                order_id=str(existing["id"]),
            )
        return order_view(existing, await self._refunds(existing["id"])), False

    async def _refunds(self, order_id: Any) -> list[dict[str, Any]]:
        return await Refund.select().where(Refund.order == order_id).order_by(Refund.created_at).run()

    async def get(self, order_id: str) -> dict[str, Any]:
        row = await self._row(order_id)
        return order_view(row, await self._refunds(row["id"]))

    async def _row(self, order_id: str) -> dict[str, Any]:
        try:
            oid = uuid.UUID(order_id)
        except ValueError:
            raise NotFound("no such order", code="order_not_found") from None
        row = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
        if row is None:
            raise NotFound("no such order", code="order_not_found")
        return row

    async def get_for(
        self, order_id: str, *, owner: str | None = None, citizen_id: str | None = None
    ) -> dict[str, Any]:
        row = await self._row(order_id)
        if (owner is not None and row["owner"] != owner) or (
            citizen_id is not None and row["citizen_id"] != citizen_id
        ):
            raise NotFound("no such order", code="order_not_found")  # no hint that it exists
        return order_view(row, await self._refunds(row["id"]))

    async def pay(self, order_id: str, citizen_id: str, channel_name: str) -> dict[str, Any]:
        channel = self.channels.get(channel_name)
        if channel is None:
            raise InvalidInput(
                f"unknown channel {channel_name!r} (available: {sorted(self.channels)})",
                code="unknown_channel",
            )
        row = await self.get_for(order_id, citizen_id=citizen_id)
        if row["state"] not in ("created", "paying"):
            raise Conflict(f"the order is {row['state']}", code="order_not_payable")
        if row["expires_at"] is not None and row["expires_at"] <= self.clock.now():
            raise Conflict("the order has expired", code="order_expired")
        payload = await channel.start_payment(
            {"order_ref": row["order_id"], "amount": row["amount"], "description": row["description"]}
        )
        await (
            PaymentOrder.update(
                {
                    PaymentOrder.state: "paying",
                    PaymentOrder.channel: channel_name,
                    PaymentOrder.updated_at: self.clock.now(),
                }
            )
            .where((PaymentOrder.id == uuid.UUID(order_id)) & PaymentOrder.state.is_in(["created", "paying"]))
            .run()
        )
        return {"order_id": order_id, "channel": channel_name, "amount": row["amount"], "pay": payload}

    async def refund(
        self, order_id: str, *, owner: str, reference: str, amount: int, reason: str
    ) -> tuple[dict[str, Any], bool]:
        """Ask for a refund (idempotent per order and reference); it completes when the channel confirms."""
        if amount <= 0:
            raise InvalidInput("amount must be a positive number of fen", code="invalid_amount")
        row = await self.get_for(order_id, owner=owner)
        key = f"{order_id}/{reference}"
        existing = await Refund.select().where(Refund.order_reference == key).first().run()
        if existing is not None:
            if existing["amount"] != amount:
                raise Conflict("this refund reference was used for another amount", code="reference_reused")
            return {
                "refund_id": str(existing["id"]),
                "amount": existing["amount"],
                "state": existing["state"],
            }, False
        async with db.transaction():
            order = await PaymentOrder.select().where(PaymentOrder.id == uuid.UUID(order_id)).first().run()
            assert order is not None
            if order["state"] not in ("paid", "partially_refunded"):
                raise Conflict(
                    f"only a paid order can be refunded; this one is {order['state']}",
                    code="order_not_refundable",
                )
            outstanding = (
                await Refund.select(Refund.amount)
                .where((Refund.order == order["id"]) & (Refund.state == "pending"))
                .run()
            )
            room = order["amount"] - order["refunded"] - sum(r["amount"] for r in outstanding)
            if amount > room:
                raise Conflict(
                    f"at most {room} fen can still be refunded",
                    code="refund_exceeds_payment",
                    refundable=room,
                )
            refund_id = uuid.uuid4()
            await Refund.insert(
                Refund(
                    id=refund_id,
                    order=order["id"],
                    order_reference=key,
                    amount=amount,
                    reason=reason,
                    created_at=self.clock.now(),
                )
            ).run()
        channel = self.channels.get(row["channel"])
        if channel is not None and self.callbacks is not None:
            callback = await channel.request_refund(
                {
                    "order_ref": order_id,
                    "refund_ref": str(refund_id),
                    "amount": amount,
                    "channel_txn": order["channel_txn"],
                }
            )
            if callback is not None:
                await self.callbacks.handle(channel.name, *callback)
        await audit.record(
            "refund_requested",
            actor_kind=owner.split(":", 1)[0],
            actor_id=owner,
            subject=order_id,
            amount=amount,
        )
        return {"refund_id": str(refund_id), "amount": amount, "state": "pending"}, True

    async def close_expired(self) -> int:
        """Close unpaid, non-deferred orders whose payment window has passed."""
        now = self.clock.now()
        async with db.transaction():
            closed = (
                await PaymentOrder.update(
                    {PaymentOrder.state: "closed", PaymentOrder.closed_at: now, PaymentOrder.updated_at: now}
                )
                .where(
                    PaymentOrder.state.is_in(["created", "paying"])
                    & (PaymentOrder.deferred == False)  # noqa: E712
                    & (PaymentOrder.expires_at <= now)
                )
                .returning(PaymentOrder.id)
                .run()
            )
            for row in closed:
                await _outbox(row["id"], "order.closed", now)
        return len(closed)

    async def charge_deferred(self, order_id: str, *, owner: str) -> dict[str, Any]:
        """Charge a deferred order against the citizen's payment agreement, through the channel of the
        agreement (the sandbox debits at once and confirms with its signed callback)."""
        row = await self.get_for(order_id, owner=owner)
        if not row["deferred"]:
            raise Conflict("only a deferred order is charged against the agreement", code="not_deferred")
        if row["state"] in PAID_STATES:
            return row
        channel = self.channels.get("sandbox")
        if channel is None or self.callbacks is None:
            from backend.errors import ServiceUnavailable

            raise ServiceUnavailable(
                "no payment-agreement channel is reachable from this deployment; the "
                "citizen pays the order in the app instead",
                code="agreement_unavailable",
            )
        assert isinstance(channel, Sandbox)
        headers, body = channel.callback(
            {
                "type": "payment.succeeded",
                "order_id": order_id,  # type: ignore[attr-defined]
                "amount": row["amount"],
                "txn_id": f"sbx_agr_{order_id[:8]}",
            }
        )
        await self.callbacks.handle(channel.name, headers, body)
        return await self.get(order_id)

    async def for_citizen(
        self, citizen_id: str, *, unpaid_only: bool, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        where: Any = PaymentOrder.citizen_id == citizen_id
        if unpaid_only:
            where &= PaymentOrder.state.is_in(["created", "paying"])
        rows = (
            await PaymentOrder.select()
            .where(where)
            .order_by(PaymentOrder.created_at, ascending=False)
            .order_by(PaymentOrder.id)
            .limit(limit)
            .offset(offset)
            .run()
        )
        return [order_view(r) for r in rows]

    async def unpaid_total(self, citizen_id: str) -> int:
        """Deferred orders not yet paid: what scan handlers look at (transit refuses over a limit)."""
        rows = (
            await PaymentOrder.select(PaymentOrder.amount)
            .where(
                (PaymentOrder.citizen_id == citizen_id)
                & (PaymentOrder.deferred == True)  # noqa: E712
                & PaymentOrder.state.is_in(["created", "paying"])
            )
            .run()
        )
        return sum(r["amount"] for r in rows)


async def _outbox(order_id: Any, type_: str, now: datetime, **extra: Any) -> None:
    row = await PaymentOrder.select().where(PaymentOrder.id == order_id).first().run()
    assert row is not None
    payload = {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in order_view(row).items()
        if k != "refunds"
    }
    payload.update(extra)
    await OutboxEvent.insert(OutboxEvent(order=order_id, type=type_, payload=payload, created_at=now)).run()


class NotificationService:
    """Applies verified channel callbacks exactly once, whatever arrives: duplicates, races, resends,
    refunds before their payment, mismatches (recorded and refused), forgeries (refused)."""

    def __init__(self, clock: Clock, channels: dict[str, Channel]) -> None:
        self.clock = clock
        self.channels = channels

    async def handle(
        self, channel_name: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, list[str]]:
        """(the reply for the channel, what happened to each notification)."""
        channel = self.channels[channel_name]
        try:
            notifications = channel.verify(headers, body, self.clock.time())
        except NotificationRejected as exc:
            log.warning("callback refused", extra={"channel": channel_name, "reason": exc.reason})
            return channel.failure(str(exc), status=exc.status), [exc.reason]
        outcomes = []
        for n in notifications:
            outcomes.append(await self._apply_once(n))
        refused = [o for o in outcomes if o.startswith("rejected:")]
        if refused:
            return channel.failure(refused[0].removeprefix("rejected:")), outcomes
        return channel.success(), outcomes

    async def _apply_once(self, n: Notification) -> str:
        key = f"{n.channel}/{n.notify_id}"
        async with db.transaction():
            # the unique key is claimed first; a duplicate or a concurrent twin (which waits here for
            # the first to commit) claims nothing and changes nothing
            claimed = (
                await ChannelNotification.insert(
                    ChannelNotification(
                        notify_key=key,
                        channel=n.channel,
                        kind=n.kind,
                        order_ref=n.order_ref,
                        refund_ref=n.refund_ref,
                        amount=n.amount,
                        channel_txn=n.channel_txn,
                        status="applying",
                        summary=n.summary,
                        received_at=self.clock.now(),
                    )
                )
                .on_conflict(target=ChannelNotification.notify_key, action="DO NOTHING")
                .returning(ChannelNotification.id)
                .run()
            )
            if claimed:
                status, reason = await self._apply(n)
                await (
                    ChannelNotification.update(
                        {
                            ChannelNotification.status: status,
                            ChannelNotification.reason: reason,
                            ChannelNotification.applied_at: self.clock.now(),
                        }
                    )
                    .where(ChannelNotification.notify_key == key)
                    .run()
                )
        if not claimed:
            return await self._previous(key)
        if status == "rejected":
            log.warning(
                "callback recorded and refused",
                extra={"channel": n.channel, "reason": reason, "order": n.order_ref},
            )
            return f"rejected:{reason}"
        return status

    async def _previous(self, key: str) -> str:
        row = (
            await ChannelNotification.select(ChannelNotification.status, ChannelNotification.reason)
            .where(ChannelNotification.notify_key == key)
            .first()
            .run()
        )
        assert row is not None
        return f"rejected:{row['reason']}" if row["status"] == "rejected" else "duplicate"

    async def _apply(self, n: Notification) -> tuple[str, str]:
        try:
            oid = uuid.UUID(n.order_ref)
        except ValueError:
            return "rejected", "unknown_order"
        order = await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()
        if order is None:
            return "rejected", "unknown_order"
        if n.kind == "payment":
            return await self._payment(order, n)
        if n.kind == "refund":
            return await self._refund(order, n)
        return await self._closed(order, n)

    async def _payment(self, order: dict[str, Any], n: Notification) -> tuple[str, str]:
        if n.amount != order["amount"]:
            return "rejected", "amount_mismatch"
        if order["state"] in PAID_STATES:
            return "applied", "already_paid"
        now = self.clock.now()
        await (
            PaymentOrder.update(
                {
                    PaymentOrder.state: "paid",
                    PaymentOrder.channel: n.channel,
                    PaymentOrder.channel_txn: n.channel_txn,
                    PaymentOrder.paid_at: now,
                    PaymentOrder.updated_at: now,
                }
            )
            .where(PaymentOrder.id == order["id"])
            .run()
        )
        await LedgerEntry.insert(
            LedgerEntry(
                order=order["id"],
                account=f"channel:{n.channel}",
                amount=n.amount,
                kind="payment",
                channel=n.channel,
                channel_txn=n.channel_txn,
                created_at=now,
            ),
            LedgerEntry(
                order=order["id"],
                account=f"payable:{order['owner']}",
                amount=-n.amount,
                kind="payment",
                channel=n.channel,
                channel_txn=n.channel_txn,
                created_at=now,
            ),
        ).run()
        await _outbox(order["id"], "order.paid", now)
        # refunds whose notice came before this payment's
        early = (
            await ChannelNotification.select()
            .where((ChannelNotification.order_ref == n.order_ref) & (ChannelNotification.status == "pending"))
            .run()
        )
        for e in early:
            fresh = await PaymentOrder.select().where(PaymentOrder.id == order["id"]).first().run()
            assert fresh is not None
            status, reason = await self._refund(
                fresh,
                Notification(
                    channel=e["channel"],
                    notify_id=e["notify_key"],
                    kind="refund",
                    order_ref=e["order_ref"],
                    amount=e["amount"],
                    channel_txn=e["channel_txn"],
                    refund_ref=e["refund_ref"],
                ),
            )
            await (
                ChannelNotification.update(
                    {
                        ChannelNotification.status: status,
                        ChannelNotification.reason: reason,
                        ChannelNotification.applied_at: now,
                    }
                )
                .where(ChannelNotification.id == e["id"])
                .run()
            )
        return "applied", ""

    async def _refund(self, order: dict[str, Any], n: Notification) -> tuple[str, str]:
        if order["state"] not in PAID_STATES:
            return "pending", "refund_before_payment"  # applied when the payment's notice arrives
        refund = None
        if n.refund_ref:
            try:
                refund = (
                    await Refund.select()
                    .where((Refund.id == uuid.UUID(n.refund_ref)) & (Refund.order == order["id"]))
                    .first()
                    .run()
                )
            except ValueError:
                refund = None
        if refund is not None and refund["state"] == "succeeded":
            return "applied", "already_refunded"
        if refund is not None and refund["amount"] != n.amount:
            return "rejected", "amount_mismatch"
        if order["refunded"] + n.amount > order["amount"]:
            return "rejected", "refund_exceeds_payment"
        now = self.clock.now()
        if refund is None:  # a refund made at the channel's side (e.g. the merchant console): record it
            refund_id = uuid.uuid4()
            await Refund.insert(
                Refund(
                    id=refund_id,
                    order=order["id"],
                    amount=n.amount,
                    state="succeeded",
                    order_reference=f"{order['id']}/channel:{n.channel_txn}",
                    reason="refunded at the channel",
                    channel_txn=n.channel_txn,
                    created_at=now,
                    succeeded_at=now,
                )
            ).run()
        else:
            refund_id = refund["id"]
            await (
                Refund.update(
                    {Refund.state: "succeeded", Refund.succeeded_at: now, Refund.channel_txn: n.channel_txn}
                )
                .where(Refund.id == refund_id)
                .run()
            )
        refunded = order["refunded"] + n.amount
        state = "refunded" if refunded == order["amount"] else "partially_refunded"
        await (
            PaymentOrder.update(
                {PaymentOrder.refunded: refunded, PaymentOrder.state: state, PaymentOrder.updated_at: now}
            )
            .where(PaymentOrder.id == order["id"])
            .run()
        )
        channel = order["channel"] or n.channel
        await LedgerEntry.insert(
            LedgerEntry(
                order=order["id"],
                refund=refund_id,
                account=f"channel:{channel}",
                amount=-n.amount,
                kind="refund",
                channel=channel,
                channel_txn=n.channel_txn,
                created_at=now,
            ),
            LedgerEntry(
                order=order["id"],
                refund=refund_id,
                account=f"payable:{order['owner']}",
                amount=n.amount,
                kind="refund",
                channel=channel,
                channel_txn=n.channel_txn,
                created_at=now,
            ),
        ).run()
        await _outbox(order["id"], "order.refunded", now, refund_id=str(refund_id), refund_amount=n.amount)
        return "applied", ""

    async def _closed(self, order: dict[str, Any], n: Notification) -> tuple[str, str]:
        if order["state"] in ("created", "paying"):
            now = self.clock.now()
            await (
                PaymentOrder.update(
                    {PaymentOrder.state: "closed", PaymentOrder.closed_at: now, PaymentOrder.updated_at: now}
                )
                .where(PaymentOrder.id == order["id"])
                .run()
            )
            await _outbox(order["id"], "order.closed", now)
        return "applied", ""

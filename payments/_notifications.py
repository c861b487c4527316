"""Channel callbacks applied exactly once (see :mod:`payments._books` for the lock every change takes).

Each verified notification is claimed by its unique key in the same transaction that locks the order,
decides, changes it, books the ledger and writes the outbox event: a duplicate, or a concurrent twin
that waits for the first to commit, claims nothing and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from backend import db
from backend.clock import Clock
from backend.errors import NotFound
from payments._books import (
    ALL_ORDER_COLUMNS,
    PAID_STATES,
    PAYABLE_STATES,
    REFUND_KINDS,
    SUSPENSE,
    ledger,
    locked_order,
    outbox,
)
from payments.channels.base import Callback, Channel, Notification, NotificationRejected, Reply
from payments.tables import ChannelNotification, LedgerEntry, Overpayment, PaymentOrder, Refund

log = logging.getLogger("shengshitong.payments")

# refusals caused by this deployment's configuration (the merchant or app id the channel names is not
# the one configured here), not by the notification: decided again when the channel resends it
CONFIGURATION_REFUSALS = frozenset({"merchant_mismatch", "app_mismatch"})


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
        channel = self.channels.get(channel_name)
        if channel is None:
            raise NotFound(f"the {channel_name} channel is not enabled here", code="channel_not_enabled")
        try:
            notifications = [n.checked() for n in channel.verify(headers, body, self.clock.time())]
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

    async def take(self, channel_name: str, answer: Callback | list[Notification] | None) -> list[str]:
        """What a channel's answer to our call says happened (a payment, a refund, a close), applied like
        its notifications: a callback to verify (the sandbox's), or notifications the channel built from
        its verified answer (a query's, a refund's), each exactly once. None or [] applies nothing."""
        if answer is None:
            return []
        if isinstance(answer, tuple):
            _reply, outcomes = await self.handle(channel_name, *answer)
            return outcomes
        return [await self._apply_once(n.checked()) for n in answer]

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
                        notification=msgspec.to_builtins(n),
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
            return await self._again(key, n)
        if status == "rejected":
            log.warning(
                "callback recorded and refused",
                extra={"channel": n.channel, "reason": reason, "order": n.order_ref},
            )
            return f"rejected:{reason}"
        return status

    async def _again(self, key: str, n: Notification) -> str:
        """A notification seen before: the answer its record holds. One refused because of OUR
        configuration (:data:`CONFIGURATION_REFUSALS`) is decided again, under its record's row lock,
        since the configuration may have been mended and the money was really paid; every other answer
        (an amount that does not match, above all) stands."""
        row = await _record(key)
        if row["status"] == "rejected" and row["reason"] in CONFIGURATION_REFUSALS:
            async with db.transaction():
                row = await _record(key, lock=True)
                if row["status"] == "rejected" and row["reason"] in CONFIGURATION_REFUSALS:
                    status, reason = await self._apply(n)
                    await (
                        ChannelNotification.update(
                            {
                                ChannelNotification.status: status,
                                ChannelNotification.reason: reason,
                                ChannelNotification.applied_at: self.clock.now(),
                                ChannelNotification.notification: msgspec.to_builtins(n),
                            }
                        )
                        .where(ChannelNotification.notify_key == key)
                        .run()
                    )
                    if status != "rejected":
                        log.info(
                            "a notice refused for our configuration is applied on its resend",
                            extra={"channel": n.channel, "order": n.order_ref, "was": row["reason"]},
                        )
                        return status
                    return f"rejected:{reason}"
        return f"rejected:{row['reason']}" if row["status"] == "rejected" else "duplicate"

    async def _apply(self, n: Notification) -> tuple[str, str]:
        """Decide and apply under the order's row lock, in the notification's transaction."""
        if n.refusal:  # genuine, but for another merchant or app
            return "rejected", n.refusal
        if n.kind == "status":  # a trade's state that is neither a payment nor a close
            return "applied", "not_a_payment"
        try:
            oid = uuid.UUID(n.order_ref)
        except ValueError:
            return "rejected", "unknown_order"
        order = await locked_order(oid)
        if order is None:
            return "rejected", "unknown_order"
        if n.currency != order["currency"]:
            return "rejected", "currency_mismatch"
        return await self._dispatch(order, n)

    async def _dispatch(self, order: dict[str, Any], n: Notification) -> tuple[str, str]:
        if n.kind == "payment":
            return await self._payment(order, n)
        if n.kind == "refund":
            return await self._refund(order, n)
        if n.kind == "refund_failed":
            return await self._refund_failed(order, n)
        return await self._closed(order, n)

    # ---- payments --------------------------------------------------------------------------------
    async def _payment(self, order: dict[str, Any], n: Notification) -> tuple[str, str]:
        if n.amount != order["amount"]:
            return "rejected", "amount_mismatch"
        if order["state"] in PAID_STATES and (order["channel"], order["channel_txn"]) == (
            n.channel,
            n.channel_txn,
        ):
            return "applied", "already_paid"  # the same payment told again
        if order["state"] not in PAYABLE_STATES:
            # real money the order does not need (paid already, or closed): held and flagged for refund
            return await self._overpaid(
                order, n, "already_paid" if order["state"] in PAID_STATES else "order_closed"
            )
        now = self.clock.now()
        paid = (
            await PaymentOrder.update(
                {
                    PaymentOrder.state: "paid",
                    PaymentOrder.channel: n.channel,
                    PaymentOrder.channel_txn: n.channel_txn,
                    PaymentOrder.paid_at: now,
                    PaymentOrder.updated_at: now,
                }
            )
            .where(PaymentOrder.id == order["id"])
            .returning(*ALL_ORDER_COLUMNS)
            .run()
        )[0]
        await ledger(
            paid,
            "payment",
            f"channel:{n.channel}",
            f"payable:{order['owner']}",
            n.amount,
            channel=n.channel,
            channel_txn=n.channel_txn,
            now=now,
            channel_time=n.channel_time,
        )
        await outbox(paid, "order.paid", now)
        await self._apply_early(paid, now)
        return "applied", ""

    async def _apply_early(self, order: dict[str, Any], now: datetime) -> None:
        """Refund notices that arrived before this payment's (kept ``pending``), applied now."""
        early = (
            await ChannelNotification.select()
            .where(
                (ChannelNotification.order_ref == str(order["id"]))
                & (ChannelNotification.status == "pending")
            )
            .order_by(ChannelNotification.received_at)
            .run()
        )
        for e in early:
            fresh = await PaymentOrder.select().where(PaymentOrder.id == order["id"]).first().run()
            assert fresh is not None
            status, reason = await self._dispatch(fresh, _stored(e))
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

    async def _overpaid(self, order: dict[str, Any], n: Notification, reason: str) -> tuple[str, str]:
        txn_key = f"{n.channel}/{n.channel_txn}"
        if await Overpayment.exists().where(Overpayment.txn_key == txn_key).run():
            return "applied", "already_overpaid"  # the same extra payment told again
        now = self.clock.now()
        overpayment_id = uuid.uuid4()
        await Overpayment.insert(
            Overpayment(
                id=overpayment_id,
                order=order["id"],
                channel=n.channel,
                channel_txn=n.channel_txn,
                txn_key=txn_key,
                amount=n.amount,
                reason=reason,
                created_at=now,
            )
        ).run()
        await ledger(
            order,
            "overpayment",
            f"channel:{n.channel}",
            SUSPENSE,
            n.amount,
            channel=n.channel,
            channel_txn=n.channel_txn,
            now=now,
            channel_time=n.channel_time,
        )
        await outbox(
            order,
            "order.overpaid",
            now,
            overpayment_id=str(overpayment_id),
            overpaid_amount=n.amount,
            overpaid_channel=n.channel,
            overpaid_reason=reason,
        )
        log.warning(
            "a payment the order did not need: held for refund",
            extra={"order": str(order["id"]), "channel": n.channel, "reason": reason},
        )
        await self._apply_early(order, now)
        return "applied", "overpaid"

    # ---- refunds ---------------------------------------------------------------------------------
    async def _find_refund(self, order: dict[str, Any], n: Notification) -> dict[str, Any] | None:
        """Our refund this notice is about: by our id (out_refund_no), or one made at the channel's
        side that an earlier notice recorded."""
        try:
            ours = uuid.UUID(n.refund_ref) if n.refund_ref else None
        except ValueError:
            ours = None
        if ours is not None:
            row = (
                await Refund.select().where((Refund.id == ours) & (Refund.order == order["id"])).first().run()
            )
            if row is not None:
                return row
        return (
            await Refund.select().where(Refund.order_reference == _channel_reference(order, n)).first().run()
        )

    async def _refunded_on(self, order: dict[str, Any], channel: str, payment_txn: str) -> int:
        """Fen already refunded through ``channel`` on its payment ``payment_txn`` of this order."""
        rows = (
            await LedgerEntry.select(LedgerEntry.amount, LedgerEntry.channel_txn)
            .where(
                (LedgerEntry.order == order["id"])
                & (LedgerEntry.account == f"channel:{channel}")
                & LedgerEntry.kind.is_in(list(REFUND_KINDS))
            )
            .run()
        )
        return -sum(int(r["amount"]) for r in rows if r["channel_txn"].startswith(f"{payment_txn}/"))

    async def _refund(self, order: dict[str, Any], n: Notification) -> tuple[str, str]:
        overpayment = None
        if n.payment_txn:
            overpayment = (
                await Overpayment.select()
                .where(
                    (Overpayment.txn_key == f"{n.channel}/{n.payment_txn}")
                    & (Overpayment.order == order["id"])
                )
                .first()
                .run()
            )
        if overpayment is None and (
            order["state"] not in PAID_STATES
            or (n.payment_txn and (n.channel, n.payment_txn) != (order["channel"], order["channel_txn"]))
        ):
            # the refund of a payment whose notice has not come yet (the order's, or a second one):
            # kept, and applied when that payment's notice arrives
            return "pending", "refund_before_payment"
        if n.cumulative:
            # the channel tells the payment's refunded total: this notice refunds what is new in it; a
            # resend, or an older total arriving late, refunds nothing
            increment = n.amount - await self._refunded_on(order, n.channel, n.payment_txn)
            if increment <= 0:
                return "applied", "already_refunded"
            n = msgspec.structs.replace(n, amount=increment, cumulative=False)
        if overpayment is not None:
            return await self._refund_overpayment(order, overpayment, n)
        refund = await self._find_refund(order, n)
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
                    order_reference=_channel_reference(order, n),
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
                    {
                        Refund.state: "succeeded",
                        Refund.succeeded_at: now,
                        Refund.channel_txn: n.channel_txn,
                        Refund.failure: "",
                    }
                )
                .where(Refund.id == refund_id)
                .run()
            )
        refunded = order["refunded"] + n.amount
        changed = (
            await PaymentOrder.update(
                {
                    PaymentOrder.refunded: refunded,
                    PaymentOrder.state: "refunded" if refunded == order["amount"] else "partially_refunded",
                    PaymentOrder.updated_at: now,
                }
            )
            .where(PaymentOrder.id == order["id"])
            .returning(*ALL_ORDER_COLUMNS)
            .run()
        )[0]
        channel = order["channel"] or n.channel
        await ledger(
            changed,
            "refund",
            f"payable:{order['owner']}",
            f"channel:{channel}",
            n.amount,
            channel=channel,
            channel_txn=n.channel_txn,
            now=now,
            channel_time=n.channel_time,
            refund=refund_id,
        )
        await outbox(changed, "order.refunded", now, refund_id=str(refund_id), refund_amount=n.amount)
        return "applied", ""

    async def _refund_overpayment(
        self, order: dict[str, Any], overpayment: dict[str, Any], n: Notification
    ) -> tuple[str, str]:
        """A refund of a payment the order did not need. A channel's console refunds any part of a
        payment, so it may come in parts: each is booked, the overpayment's ``refunded`` grows, and it
        is ``refunded`` once all of it is. One refund (the channel's refund id) is booked once, whatever
        notices tell it; more than is left of the overpayment is refused."""
        if overpayment["state"] == "refunded":
            return "applied", "already_refunded"
        told = (
            await LedgerEntry.exists()
            .where(
                (LedgerEntry.order == order["id"])
                & (LedgerEntry.kind == "overpay_refund")
                & (LedgerEntry.channel_txn == n.channel_txn)
            )
            .run()
        )
        if told:
            return "applied", "already_refunded"
        refunded = overpayment["refunded"] + n.amount
        if refunded > overpayment["amount"]:
            return "rejected", "refund_exceeds_payment"
        state = "refunded" if refunded == overpayment["amount"] else overpayment["state"]
        now = self.clock.now()
        await (
            Overpayment.update(
                {
                    Overpayment.refunded: refunded,
                    Overpayment.state: state,
                    Overpayment.refund_txn: n.channel_txn,
                    Overpayment.refunded_at: now if state == "refunded" else None,
                }
            )
            .where(Overpayment.id == overpayment["id"])
            .run()
        )
        await ledger(
            order,
            "overpay_refund",
            SUSPENSE,
            f"channel:{n.channel}",
            n.amount,
            channel=n.channel,
            channel_txn=n.channel_txn,
            now=now,
            channel_time=n.channel_time,
        )
        await outbox(
            order,
            "order.overpayment_refunded",
            now,
            overpayment_id=str(overpayment["id"]),
            overpaid_amount=overpayment["amount"],
            overpaid_channel=n.channel,
            refund_amount=n.amount,
            overpayment_refunded=refunded,
            overpayment_state=state,
        )
        return "applied", ""

    async def _refund_failed(self, order: dict[str, Any], n: Notification) -> tuple[str, str]:
        """The channel closed a refund (failed) or could not pay it out (abnormal: an operator must
        act at the channel). The refund stops holding room; the owner is told."""
        refund = await self._find_refund(order, n)
        if refund is None and order["state"] not in PAID_STATES:
            return "pending", "refund_before_payment"
        if refund is not None and refund["state"] != "pending":
            return "applied", f"already_{refund['state']}"
        state = "abnormal" if n.failure == "ABNORMAL" else "failed"
        now = self.clock.now()
        if refund is None:  # one asked for at the channel's side: recorded, so operators see it
            refund_id = uuid.uuid4()
            await Refund.insert(
                Refund(
                    id=refund_id,
                    order=order["id"],
                    amount=n.amount,
                    state=state,
                    order_reference=_channel_reference(order, n),
                    reason="refunded at the channel",
                    channel_txn=n.channel_txn,
                    failure=n.failure,
                    created_at=now,
                    failed_at=now,
                )
            ).run()
        else:
            refund_id = refund["id"]
            await (
                Refund.update({Refund.state: state, Refund.failure: n.failure, Refund.failed_at: now})
                .where(Refund.id == refund_id)
                .run()
            )
        await outbox(
            order,
            "order.refund_failed",
            now,
            refund_id=str(refund_id),
            refund_amount=n.amount,
            refund_state=state,
            failure=n.failure,
        )
        log.warning(
            "a refund failed at the channel",
            extra={"order": str(order["id"]), "channel": n.channel, "failure": n.failure},
        )
        return "applied", state

    # ---- closing ---------------------------------------------------------------------------------
    async def _closed(self, order: dict[str, Any], n: Notification) -> tuple[str, str]:
        """A channel closed ITS trade for this order (Alipay's TRADE_CLOSED when an unpaid trade times
        out): that channel's payment attempt is over, not the order. The order is payable again
        (``created``, no channel) unless its own payment window has passed (then closed, as
        close-expired would close it); a deferred order is a debt and has no window, so a channel never
        closes it; a close from a channel the order is not being paid in changes nothing."""
        if order["state"] not in PAYABLE_STATES:
            return "applied", "nothing_to_close"  # paid already, or closed
        if order["channel"] != n.channel:
            return "applied", "not_paying_there"
        now = self.clock.now()
        expired = not order["deferred"] and order["expires_at"] is not None and order["expires_at"] <= now
        if not expired:
            await (
                PaymentOrder.update(
                    {PaymentOrder.state: "created", PaymentOrder.channel: "", PaymentOrder.updated_at: now}
                )
                .where(PaymentOrder.id == order["id"])
                .run()
            )
            return "applied", "payment_attempt_ended"
        closed = (
            await PaymentOrder.update(
                {PaymentOrder.state: "closed", PaymentOrder.closed_at: now, PaymentOrder.updated_at: now}
            )
            .where(PaymentOrder.id == order["id"])
            .returning(*ALL_ORDER_COLUMNS)
            .run()
        )[0]
        await outbox(closed, "order.closed", now)
        return "applied", ""


async def _record(key: str, *, lock: bool = False) -> dict[str, Any]:
    """The status and reason recorded for a notification key (locked: until the transaction ends)."""
    query = ChannelNotification.select(ChannelNotification.status, ChannelNotification.reason).where(
        ChannelNotification.notify_key == key
    )
    row = await (db.for_update(query) if lock else query).first().run()
    assert row is not None  # the key was claimed by a committed transaction
    return dict(row)


def _channel_reference(order: Mapping[str, Any], n: Notification) -> str:
    """The idempotency key of a refund made at the channel's side: its refund id, hashed if the key
    would not fit (an Alipay trade number with a long out_biz_no)."""
    key = f"{order['id']}/channel:{n.channel_txn}"
    if len(key) <= 110:
        return key
    return f"{order['id']}/channel#{hashlib.sha256(n.channel_txn.encode()).hexdigest()[:48]}"


def _stored(row: Mapping[str, Any]) -> Notification:
    """A notification kept ``pending``, as it was verified."""
    stored = row["notification"]
    if isinstance(stored, str):
        stored = msgspec.json.decode(stored)
    if stored:
        return msgspec.convert(stored, Notification)
    # kept before whole notifications were stored: a refund, as the record's columns tell it
    return Notification(
        channel=row["channel"],
        notify_id=row["notify_key"],
        kind="refund",
        order_ref=row["order_ref"],
        amount=row["amount"],
        channel_txn=row["channel_txn"],
        refund_ref=row["refund_ref"],
    )

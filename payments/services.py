"""The payment centre: orders, refunds, the ledger, exactly-once callbacks, the outbox.

Orders and refund requests are here; applying the channels' callbacks is
:mod:`payments._notifications`; the row lock, ledger and outbox every money change shares are
:mod:`payments._books`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from auth.tables import MachineClient
from backend import audit, db
from backend.clock import Clock
from backend.errors import AppError, Conflict, InvalidInput, NotFound, ServiceUnavailable
from backend.runtime import Slot
from payments._books import (
    ALL_ORDER_COLUMNS,
    PAID_STATES,
    PAYABLE_STATES,
    locked_order,
    order_uuid,
    order_view,
    outbox,
)
from payments._notifications import NotificationService
from payments._recovery import PaymentRecovery, RecoveryTimes, schedule, task_key
from payments.channels.base import Capability, Channel, refund_unavailable
from payments.events import OwnerSubscribers
from payments.tables import ChannelTask, Overpayment, PaymentOrder, Refund
from payments.webhooks import WebhookDispatcher, WebhookEndpoints

if TYPE_CHECKING:
    from payments.unpaid import UnpaidCounts

log = logging.getLogger("shengshitong.payments")

__all__ = [
    "PAID_STATES",
    "PAYABLE_STATES",
    "PAYMENTS",
    "NotificationService",
    "OrderService",
    "PaymentRecovery",
    "PaymentServices",
    "order_view",
]


class OrderService:
    def __init__(
        self,
        clock: Clock,
        channels: dict[str, Channel],
        *,
        callbacks: NotificationService,
        order_ttl: int = 1800,
        public_url: str = "",
        times: RecoveryTimes | None = None,
        env: str = "dev",
    ) -> None:
        self.clock = clock
        self.channels = channels
        self.order_ttl = order_ttl
        self.times = times or RecoveryTimes()
        self.env = env
        self.public_url = public_url.rstrip("/")
        # where a channel's immediate callback goes (the sandbox confirms refunds at once)
        self.callbacks = callbacks

    # ---- reading ---------------------------------------------------------------------------------
    def pay_link(self, order_id: str) -> dict[str, str]:
        """What a till shows as a QR code for an order without a citizen: the app opens ``uri`` (the
        https ``url`` is the same link for a phone without the app's scheme registered)."""
        return {
            "uri": f"shengshitong://pay?order={order_id}",
            "url": f"{self.public_url}/wallet?pay={order_id}",
        }

    def _view(
        self,
        row: Mapping[str, Any],
        refunds: Sequence[Mapping[str, Any]] | None = None,
        overpayments: Sequence[Mapping[str, Any]] | None = None,
        merchant_name: str | None = None,
    ) -> dict[str, Any]:
        open_to_claim = row["citizen_id"] is None and row["state"] in PAYABLE_STATES
        return order_view(
            row,
            refunds,
            overpayments,
            pay_link=self.pay_link(str(row["id"])) if open_to_claim else None,
            merchant_name=merchant_name,
        )

    @staticmethod
    async def _merchant_name(owner: str) -> str | None:
        """The name a merchant was registered under (``shengshi merchants add NAME``): whom the citizen
        pays, shown beside the amount."""
        kind, _, client_id = owner.partition(":")
        if kind != "merchant":
            return None
        row = (
            await MachineClient.select(MachineClient.name)
            .where((MachineClient.client_id == client_id) & (MachineClient.kind == "merchant"))
            .first()
            .run()
        )
        return str(row["name"]) if row and row["name"] else None

    async def _full_view(self, row: Mapping[str, Any]) -> dict[str, Any]:
        refunds = await Refund.select().where(Refund.order == row["id"]).order_by(Refund.created_at).run()
        overpayments = (
            await Overpayment.select()
            .where(Overpayment.order == row["id"])
            .order_by(Overpayment.created_at)
            .run()
        )
        return self._view(row, refunds, overpayments, await self._merchant_name(row["owner"]))

    async def _row(self, order_id: str) -> dict[str, Any]:
        row = await PaymentOrder.select().where(PaymentOrder.id == order_uuid(order_id)).first().run()
        if row is None:
            raise NotFound("no such order", code="order_not_found")
        return row

    async def citizen_of(self, order_id: str) -> str | None:
        """The citizen an order belongs to (None: nobody has claimed a merchant's order yet)."""
        row = (
            await PaymentOrder.select(PaymentOrder.citizen_id)
            .where(PaymentOrder.id == order_uuid(order_id))
            .first()
            .run()
        )
        return None if row is None or row["citizen_id"] is None else str(row["citizen_id"])

    async def get(self, order_id: str) -> dict[str, Any]:
        return await self._full_view(await self._row(order_id))

    async def get_for(
        self, order_id: str, *, owner: str | None = None, citizen_id: str | None = None
    ) -> dict[str, Any]:
        """One order for its owner, or for its citizen; an order nobody has claimed yet (a merchant's
        order, reached through its pay link) is shown to any citizen while it can be paid."""
        row = await self._row(order_id)
        if owner is not None and row["owner"] != owner:
            raise NotFound("no such order", code="order_not_found")  # no hint that it exists
        if citizen_id is not None and row["citizen_id"] != citizen_id:
            if not (row["citizen_id"] is None and row["state"] in PAYABLE_STATES):
                raise NotFound("no such order", code="order_not_found")
        return await self._full_view(row)

    # ---- creating and paying ---------------------------------------------------------------------
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
        """(order, created): creating the same reference twice returns the first order. An order without
        a citizen carries a pay link; the first citizen who pays it through the link becomes its
        citizen."""
        if amount <= 0:
            raise InvalidInput("amount must be a positive number of fen", code="invalid_amount")
        if deferred and citizen_id is None:
            raise InvalidInput(
                "a deferred order is charged against a citizen's payment agreement: name the citizen",
                code="deferred_needs_citizen",
            )
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
                return self._view(existing), True
        # the citizen the order was created for (one who claimed it through its pay link came later)
        created_for = None if existing["claimed_at"] is not None else existing["citizen_id"]
        if existing["amount"] != amount or created_for != citizen_id or existing["deferred"] != deferred:
            raise Conflict(
                "this reference was used for a different order",
                code="reference_reused",
                order_id=str(existing["id"]),
            )
        return await self._full_view(existing), False

    async def create_deferred(
        self, *, owner: str, app_id: str, orders: list[tuple[str, int, str, str]]
    ) -> dict[str, str]:
        """Deferred orders in bulk, each ``(reference, amount, citizen_id, description)``, idempotent on
        the reference like :meth:`create` (two statements for the whole batch: an insert that skips
        references already used, and a read of their ids). Returns {reference: order id}. Meant for
        decisions written behind a gate in batches; a reference already used for a different order is a
        :class:`Conflict`, as in :meth:`create`."""
        if not orders:
            return {}
        now = self.clock.now()
        for _, amount, _, _ in orders:
            if amount <= 0:
                raise InvalidInput("amount must be a positive number of fen", code="invalid_amount")
        await db.bulk_insert(
            PaymentOrder,
            [
                {
                    "id": uuid.uuid4(),
                    "owner": owner,
                    "app_id": app_id,
                    "reference": reference,
                    "owner_reference": f"{owner}/{reference}",
                    "citizen_id": citizen_id,
                    "description": description,
                    "amount": amount,
                    "currency": "CNY",
                    "state": "created",
                    "deferred": True,
                    "channel": "",
                    "channel_txn": "",
                    "refunded": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for reference, amount, citizen_id, description in orders
            ],
            on_conflict_do_nothing="owner_reference",
        )
        rows = (
            await PaymentOrder.select(
                PaymentOrder.id,
                PaymentOrder.reference,
                PaymentOrder.amount,
                PaymentOrder.citizen_id,
                PaymentOrder.deferred,
            )
            .where(PaymentOrder.owner_reference.is_in([f"{owner}/{r}" for r, *_ in orders]))
            .run()
        )
        found = {r["reference"]: r for r in rows}
        out = {}
        for reference, amount, citizen_id, _ in orders:
            row = found[reference]
            if row["amount"] != amount or str(row["citizen_id"]) != citizen_id or not row["deferred"]:
                raise Conflict(
                    "this reference was used for a different order",
                    code="reference_reused",
                    order_id=str(row["id"]),
                )
            out[reference] = str(row["id"])
        return out

    async def _payable_by(self, order_id: str, citizen_id: str) -> dict[str, Any]:
        """The order, for its citizen; an order without a citizen is claimed by this one first (a
        conditional update: of two citizens opening one pay link, one gets it)."""
        row = await self._row(order_id)
        if row["citizen_id"] is None and row["state"] in PAYABLE_STATES:
            now = self.clock.now()
            if row["expires_at"] is not None and row["expires_at"] <= now:
                raise Conflict("the order has expired", code="order_expired")  # nobody claims it now
            claimed = (
                await PaymentOrder.update(
                    {
                        PaymentOrder.citizen_id: citizen_id,
                        PaymentOrder.claimed_at: now,
                        PaymentOrder.updated_at: now,
                    }
                )
                .where(
                    (PaymentOrder.id == row["id"])
                    & PaymentOrder.citizen_id.is_null()
                    & PaymentOrder.state.is_in(list(PAYABLE_STATES))
                )
                .returning(*ALL_ORDER_COLUMNS)
                .run()
            )
            row = claimed[0] if claimed else await self._row(order_id)
        if row["citizen_id"] != citizen_id:
            if row["claimed_at"] is not None:
                raise Conflict("another citizen is paying this order", code="order_claimed")
            raise NotFound("no such order", code="order_not_found")
        return row

    async def pay(
        self,
        order_id: str,
        citizen_id: str,
        channel_name: str,
        *,
        method: str | None = None,
        payer: str | None = None,
    ) -> dict[str, Any]:
        channel = self.channels.get(channel_name)
        if channel is None:
            raise InvalidInput(
                f"unknown channel {channel_name!r} (available: {sorted(self.channels)})",
                code="unknown_channel",
                channel=channel_name,
                available=sorted(self.channels),
            )
        method = method or channel.pay_methods[0]
        if method not in channel.pay_methods:
            raise InvalidInput(
                f"{channel_name} is paid by {', '.join(channel.pay_methods)}, not {method!r}",
                code="unknown_pay_method",
                channel=channel_name,
                available=list(channel.pay_methods),
            )
        row = await self._payable_by(order_id, citizen_id)
        if row["state"] not in PAYABLE_STATES:
            raise Conflict(f"the order is {row['state']}", code="order_not_payable", state=row["state"])
        if row["expires_at"] is not None and row["expires_at"] <= self.clock.now():
            raise Conflict("the order has expired", code="order_expired")
        payload = await channel.start_payment(
            {
                "order_ref": str(row["id"]),
                "amount": row["amount"],
                "description": row["description"],
                "expires_at": row["expires_at"],
                "method": method,
                "payer": payer,
            }
        )
        now = self.clock.now()
        async with db.transaction():
            paying = await (
                PaymentOrder.update(
                    {
                        PaymentOrder.state: "paying",
                        PaymentOrder.channel: channel_name,
                        PaymentOrder.updated_at: now,
                    }
                )
                .where((PaymentOrder.id == row["id"]) & PaymentOrder.state.is_in(list(PAYABLE_STATES)))
                .returning(PaymentOrder.id)
                .run()
            )
            if paying and Capability.QUERY in channel.capabilities:
                # asked about if its notice has not come by then (payments._recovery)
                at = now + timedelta(seconds=self.times.query_after)
                await schedule("query", channel_name, str(row["id"]), at)
        return {"order_id": str(row["id"]), "channel": channel_name, "amount": row["amount"], "pay": payload}

    def _able(self, capability: Capability) -> Channel | None:
        """The first enabled channel (in the configured order) that can do ``capability``."""
        return next((c for c in self.channels.values() if capability in c.capabilities), None)

    async def pay_on_page(self, order_id: str, citizen_id: str) -> dict[str, Any]:
        """The payment page this service serves (the sandbox's): the citizen pays, the channel sends its
        signed callback."""
        channel = self._able(Capability.PAY_PAGE)
        if channel is None:
            raise NotFound("the sandbox channel is not enabled here", code="channel_not_enabled")
        row = await self._payable_by(order_id, citizen_id)
        if row["state"] not in PAID_STATES:
            if row["state"] not in PAYABLE_STATES:
                raise Conflict(f"the order is {row['state']}", code="order_not_payable", state=row["state"])
            headers, body = await channel.pay_on_page({"order_ref": str(row["id"]), "amount": row["amount"]})
            await self.callbacks.handle(channel.name, headers, body)
        return await self.get_for(order_id, citizen_id=citizen_id)

    async def sandbox_pay(self, order_id: str, *, lose_notice: bool = False) -> dict[str, Any]:
        """(development) Pay an order on the sandbox as its citizen would, without signing in; with
        ``lose_notice`` the sandbox takes the money and its notice never arrives, so the payment centre's
        query must find it (docs/payments.md, "When a notice does not come"). Refused in prod."""
        from_sandbox = self.channels.get("sandbox")
        if self.env == "prod" or from_sandbox is None or not hasattr(from_sandbox, "pay_losing_notice"):
            raise NotFound("the sandbox channel is not enabled here", code="channel_not_enabled")
        row = await self._row(order_id)
        if row["state"] not in PAYABLE_STATES:
            raise Conflict(f"the order is {row['state']}", code="order_not_payable", state=row["state"])
        if row["state"] == "created" or row["channel"] != "sandbox":
            if row["citizen_id"] is None:
                raise Conflict(
                    "no citizen has taken this order yet", code="order_not_payable", state="created"
                )
            await self.pay(order_id, row["citizen_id"], "sandbox")  # as the app would start it
        order = {"order_ref": str(row["id"]), "amount": row["amount"]}
        if lose_notice:
            await from_sandbox.pay_losing_notice(order)
        else:
            headers, body = await from_sandbox.pay_on_page(order)
            await self.callbacks.handle("sandbox", headers, body)
        return await self.get(order_id)

    # ---- refunds ---------------------------------------------------------------------------------
    async def refund(
        self, order_id: str, *, owner: str, reference: str, amount: int, reason: str
    ) -> tuple[dict[str, Any], bool]:
        """Ask for a refund (idempotent per order and reference); it completes when the channel confirms.

        Steps: (1) under the order's lock, check and write the refund as ``pending`` (it holds its room
        from then on), commit; (2) ask the channel, naming the refund's id as its out_refund_no. A
        channel that cannot refund here is refused in (1), before anything is written. A channel that
        refuses in (2) leaves no refund behind. A crash between (1) and (2), or an answer lost in (2),
        leaves the refund pending: the caller's retry with the same reference asks the channel again,
        which refunds one out_refund_no once."""
        if amount <= 0:
            raise InvalidInput("amount must be a positive number of fen", code="invalid_amount")
        oid = order_uuid(order_id)
        key = f"{oid}/{reference}"
        async with db.transaction():
            order = await locked_order(oid)
            if order is None or order["owner"] != owner:
                raise NotFound("no such order", code="order_not_found")
            existing = await Refund.select().where(Refund.order_reference == key).first().run()
            channel = self.channels.get(order["channel"])
            if existing is not None:
                if existing["amount"] != amount:
                    raise Conflict(
                        "this refund reference was used for another amount", code="reference_reused"
                    )
                refund, created = existing, False
            else:
                if order["state"] not in ("paid", "partially_refunded"):
                    raise Conflict(
                        f"only a paid order can be refunded; this one is {order['state']}",
                        code="order_not_refundable",
                        state=order["state"],
                    )
                held = (
                    await Refund.select(Refund.amount)
                    .where((Refund.order == order["id"]) & (Refund.state == "pending"))
                    .run()
                )
                room = order["amount"] - order["refunded"] - sum(r["amount"] for r in held)
                if amount > room:
                    raise Conflict(
                        f"at most {room} fen can still be refunded",
                        code="refund_exceeds_payment",
                        refundable=room,
                    )
                if channel is None or not channel.requests_refunds:
                    raise refund_unavailable(order["channel"] or "this channel")  # nothing written
                refund = {
                    "id": uuid.uuid4(),
                    "amount": amount,
                    "state": "pending",
                }
                await Refund.insert(
                    Refund(
                        id=refund["id"],
                        order=order["id"],
                        order_reference=key,
                        amount=amount,
                        reason=reason,
                        created_at=self.clock.now(),
                    )
                ).run()
                # seen to its end even if this process dies before the channel is asked, or the
                # channel answers "processing" (payments._recovery)
                at = self.clock.now() + timedelta(seconds=self.times.refund_retry_after)
                await schedule("refund", channel.name, str(refund["id"]), at)
                created = True
        if refund["state"] == "pending" and channel is not None and channel.requests_refunds:
            await self._ask_channel(channel, order, refund)
        if created:
            await audit.record(
                "refund_requested",
                actor_kind=owner.split(":", 1)[0],
                actor_id=owner,
                subject=str(oid),
                amount=amount,
            )
        state = await Refund.select(Refund.state).where(Refund.id == refund["id"]).first().run()
        if state and state["state"] != "pending" and channel is not None:
            await (
                ChannelTask.update(
                    {ChannelTask.done_at: self.clock.now(), ChannelTask.outcome: state["state"]}
                )
                .where(
                    (ChannelTask.key == task_key("refund", channel.name, str(refund["id"])))
                    & ChannelTask.done_at.is_null()
                )
                .run()
            )
        return {
            "refund_id": str(refund["id"]),
            "amount": amount,
            "state": state["state"] if state else refund["state"],
        }, created

    async def _ask_channel(
        self, channel: Channel, order: Mapping[str, Any], refund: Mapping[str, Any]
    ) -> None:
        try:
            callback = await channel.request_refund(
                {
                    "order_ref": str(order["id"]),
                    "refund_ref": str(refund["id"]),
                    "amount": refund["amount"],
                    "total": order["amount"],  # WeChat's refund names the payment's total
                    "channel_txn": order["channel_txn"],
                    "reason": refund.get("reason", ""),
                }
            )
        except AppError as exc:
            if exc.code == "channel_unavailable":
                return  # the outcome is unknown: the refund stays pending and is asked about again
            # the channel said no before doing anything: the refund never was, and holds no room
            await Refund.delete().where((Refund.id == refund["id"]) & (Refund.state == "pending")).run()
            raise
        except Exception:
            log.warning("a refund request got no usable answer; it is asked again", exc_info=True)
            return
        await self.callbacks.take(channel.name, callback)

    # ---- closing and charging --------------------------------------------------------------------
    async def close_expired(self) -> int:
        """Close unpaid, non-deferred orders whose payment window has passed (a conditional update: an
        order whose payment holds its lock is closed only if it is still unpaid afterwards)."""
        now = self.clock.now()
        async with db.transaction():
            closed = (
                await PaymentOrder.update(
                    {PaymentOrder.state: "closed", PaymentOrder.closed_at: now, PaymentOrder.updated_at: now}
                )
                .where(
                    PaymentOrder.state.is_in(list(PAYABLE_STATES))
                    & (PaymentOrder.deferred == False)  # noqa: E712
                    & (PaymentOrder.expires_at <= now)
                )
                .returning(*ALL_ORDER_COLUMNS)
                .run()
            )
            for row in closed:
                await outbox(row, "order.closed", now)
                channel = self.channels.get(row["channel"])
                if channel is not None and Capability.CLOSE in channel.capabilities:
                    # it was being paid there: its trade is closed there too (kept until done)
                    await schedule("close", channel.name, str(row["id"]), now)
        return len(closed)

    async def charge_deferred(self, order_id: str, *, owner: str) -> dict[str, Any]:
        """Charge a deferred order against the citizen's payment agreement, through the first enabled
        channel that can (:attr:`Capability.DEFERRED_CHARGE`: the sandbox debits at once and confirms with
        its signed callback). The charge is one transaction of the agreement per order, so charging
        twice, even at once, charges once."""
        row = await self.get_for(order_id, owner=owner)
        if not row["deferred"]:
            raise Conflict("only a deferred order is charged against the agreement", code="not_deferred")
        if row["state"] in PAID_STATES:
            return row
        if row["state"] not in PAYABLE_STATES:
            raise Conflict(f"the order is {row['state']}", code="order_not_payable", state=row["state"])
        channel = self._able(Capability.DEFERRED_CHARGE)
        if channel is None:
            raise ServiceUnavailable(
                "no payment-agreement channel is reachable from this deployment; the "
                "citizen pays the order in the app instead",
                code="agreement_unavailable",
            )
        answer = await channel.charge_agreement(
            {"order_ref": row["order_id"], "amount": row["amount"], "description": row["description"]}
        )
        await self.callbacks.take(channel.name, answer)
        await self.charging(order_id, channel)
        return await self.get(order_id)

    async def close_unpaid(self, order_id: str | uuid.UUID) -> str:
        """Close an order nobody is paying in a channel now (``created``), with its ``order.closed``
        event, under the order's lock: its owner withdrew what it was for (a cancelled fee notice).
        Returns the order's state afterwards; an order being paid (``paying``), paid or closed is left
        as it is, and the caller decides what that means."""
        now = self.clock.now()
        async with db.transaction():
            order = await locked_order(uuid.UUID(str(order_id)))
            if order is None:
                raise NotFound("no such order", code="order_not_found")
            if order["state"] != "created":
                return str(order["state"])
            closed = (
                await PaymentOrder.update(
                    {PaymentOrder.state: "closed", PaymentOrder.closed_at: now, PaymentOrder.updated_at: now}
                )
                .where(PaymentOrder.id == order["id"])
                .returning(*ALL_ORDER_COLUMNS)
                .run()
            )
            await outbox(closed[0], "order.closed", now)
        return "closed"

    async def charging(self, order_id: str | uuid.UUID, channel: Channel) -> None:
        """An agreement charge at ``channel`` whose outcome is not known yet (the channel is processing
        it, or gave no usable answer): the order is being paid there, and, where the channel answers
        queries, it is asked about until it ends, as for any payment whose notice has not come
        (payments._recovery asks only about an order being paid in that channel). An order already
        paid or closed is left alone; a till's retry of the same charge keeps the query as scheduled."""
        now = self.clock.now()
        async with db.transaction():
            paying = (
                await PaymentOrder.update(
                    {
                        PaymentOrder.state: "paying",
                        PaymentOrder.channel: channel.name,
                        PaymentOrder.updated_at: now,
                    }
                )
                .where(
                    (PaymentOrder.id == order_uuid(str(order_id)))
                    & PaymentOrder.state.is_in(list(PAYABLE_STATES))
                    # already paying there (a till's retry): its query stays as it was scheduled
                    & ((PaymentOrder.state != "paying") | (PaymentOrder.channel != channel.name))
                )
                .returning(PaymentOrder.id)
                .run()
            )
            if paying and Capability.QUERY in channel.capabilities:
                at = now + timedelta(seconds=self.times.query_after)
                await schedule("query", channel.name, str(paying[0]["id"]), at)

    # ---- the citizen's orders --------------------------------------------------------------------
    async def for_citizen(
        self, citizen_id: str, *, unpaid_only: bool, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        where: Any = PaymentOrder.citizen_id == citizen_id
        if unpaid_only:
            where &= PaymentOrder.state.is_in(list(PAYABLE_STATES))
        rows = (
            await PaymentOrder.select()
            .where(where)
            .order_by(PaymentOrder.created_at, ascending=False)
            .order_by(PaymentOrder.id)
            .limit(limit)
            .offset(offset)
            .run()
        )
        return [self._view(r) for r in rows]

    async def unpaid_total(self, citizen_id: str) -> int:
        """Deferred orders not yet paid: what scan handlers look at (transit refuses over a limit)."""
        rows = (
            await PaymentOrder.select(PaymentOrder.amount)
            .where(
                (PaymentOrder.citizen_id == citizen_id)
                & (PaymentOrder.deferred == True)  # noqa: E712
                & PaymentOrder.state.is_in(list(PAYABLE_STATES))
            )
            .run()
        )
        return sum(r["amount"] for r in rows)


@dataclass(frozen=True)
class PaymentServices:
    """The payment centre as the rest of the platform uses it (built in ``payments.plugin``)."""

    channels: dict[str, Channel]
    orders: OrderService
    unpaid: UnpaidCounts
    notifications: NotificationService
    recovery: PaymentRecovery
    endpoints: WebhookEndpoints
    webhooks: WebhookDispatcher
    # the platform's handlers of order events (the mini-app platform subscribes for its apps' orders)
    subscribers: OwnerSubscribers

    @property
    def page_channel(self) -> str | None:
        """The enabled channel paid on this service's own payment page (the sandbox), if any."""
        return next((n for n, c in self.channels.items() if Capability.PAY_PAGE in c.capabilities), None)


PAYMENTS = Slot[PaymentServices]("payments")

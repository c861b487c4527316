"""What the payment centre asks of the channels on its own: a payment whose notice has not come is
queried, an expired order's trade is closed at its channel, a pending refund is asked about (or asked
for again) until it ends, and each day's statement is downloaded and reconciled once it is out.

Every such need is a :class:`~payments.tables.ChannelTask`, written in the transaction that creates it
(the order set paying, the order closed, the refund written pending) or, for a statement, when its day
is due. A worker claims a due task with a conditional update that moves ``next_at`` a lease ahead (of
two workers, one gets it; a worker that dies leaves it due again once the lease ends), does it, and
either marks it done or sets when to try again (back-off). What a channel answers is applied through
:meth:`NotificationService.take`, exactly once however many ways it is told.
"""

from __future__ import annotations

import gzip
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from backend import audit, db
from backend.clock import Clock
from backend.errors import AppError, NotFound
from payments._books import PAID_STATES, PAYABLE_STATES, outbox
from payments._notifications import NotificationService
from payments.channels.base import Capability, Channel, Statement
from payments.reconciliation import CHINA, reconcile
from payments.tables import ChannelStatement, ChannelTask, PaymentOrder, Refund

log = logging.getLogger("shengshitong.payments")

LEASE = timedelta(minutes=5)  # how long a claimed task is held before another worker may take it up


@dataclass(frozen=True)
class RecoveryTimes:
    """When the payment centre asks (settings ``payment_query_after`` and friends, in seconds)."""

    query_after: float = 120.0  # a payment still ``paying`` this long is asked about
    refund_retry_after: float = 60.0  # a pending refund is asked about (or for again) after this
    retry_cap: float = 3600.0  # the longest wait between two tries
    bill_retry: float = 1800.0  # a statement not out yet is asked for again after this
    bill_days: int = 3  # the last days whose statements are fetched if they were missed
    close_attempts: int = 48  # an unreachable channel's close is given up after this many tries


def task_key(kind: str, channel: str, subject: str) -> str:
    return f"{kind}/{channel}/{subject}"


async def schedule(kind: str, channel: str, subject: str, at: datetime, *, renew: bool = True) -> None:
    """Owe ``channel`` a task from ``at`` (in the caller's transaction). ``renew``: a task of the same
    key that was done is due again (an order paying again in the same channel)."""
    row = ChannelTask(
        key=task_key(kind, channel, subject),
        kind=kind,
        channel=channel,
        subject=subject,
        attempts=0,
        next_at=at,
        created_at=at,
        done_at=None,
        outcome="",
        last_error="",
    )
    if renew:
        await (
            ChannelTask.insert(row)
            .on_conflict(
                target=ChannelTask.key,
                action="DO UPDATE",
                values=[
                    ChannelTask.next_at,
                    ChannelTask.done_at,
                    ChannelTask.attempts,
                    ChannelTask.outcome,
                    ChannelTask.last_error,
                ],
            )
            .run()
        )
    else:
        await ChannelTask.insert(row).on_conflict(target=ChannelTask.key, action="DO NOTHING").run()


class PaymentRecovery:
    """Runs the channel tasks that are due (:meth:`run_once`): one pass, from the background loop on
    every worker or by hand (``shengshi payments recover``)."""

    def __init__(
        self,
        clock: Clock,
        channels: dict[str, Channel],
        notifications: NotificationService,
        times: RecoveryTimes | None = None,
    ) -> None:
        self.clock = clock
        self.channels = channels
        self.notifications = notifications
        self.times = times or RecoveryTimes()

    # ---- claiming ------------------------------------------------------------------------------------
    async def run_once(self, kinds: tuple[str, ...] | None = None, limit: int = 100) -> dict[str, int]:
        """Do the due tasks (of ``kinds``; all when None): {outcome: count}."""
        if kinds is None or "bill" in kinds:
            await self.bills_due()
        now = self.clock.now()
        where: Any = ChannelTask.done_at.is_null() & (ChannelTask.next_at <= now)
        if kinds is not None:
            where &= ChannelTask.kind.is_in(list(kinds))
        due = (
            await ChannelTask.select(ChannelTask.id)
            .where(where)
            .order_by(ChannelTask.next_at)
            .limit(limit)
            .run()
        )
        done: dict[str, int] = {}
        for row in due:
            task = await self._claim(row["id"])
            if task is None:
                continue  # another worker took it
            outcome = await self._run(task)
            done[outcome] = done.get(outcome, 0) + 1
        return done

    async def _claim(self, task_id: uuid.UUID) -> dict[str, Any] | None:
        now = self.clock.now()
        claimed = (
            await ChannelTask.update(
                {ChannelTask.next_at: now + LEASE, ChannelTask.attempts: ChannelTask.attempts + 1}
            )
            .where((ChannelTask.id == task_id) & ChannelTask.done_at.is_null() & (ChannelTask.next_at <= now))
            .returning(*ChannelTask.all_columns())
            .run()
        )
        return dict(claimed[0]) if claimed else None

    async def _run(self, task: dict[str, Any]) -> str:
        channel = self.channels.get(task["channel"])
        if channel is None:
            return await self._done(task, "channel_not_enabled")
        try:
            if task["kind"] == "query":
                return await self._query(task, channel)
            if task["kind"] == "close":
                return await self._close(task, channel)
            if task["kind"] == "refund":
                return await self._refund(task, channel)
            if task["kind"] == "bill":
                return await self._bill(task, channel)
            return await self._done(task, "unknown_task")
        except Exception as exc:  # the channel unreachable, busy, or anything unexpected: tried again
            code = getattr(exc, "code", type(exc).__name__)
            log.warning(
                "a channel task failed; it is tried again",
                extra={"channel": task["channel"], "task": task["kind"], "error": code},
            )
            if task["kind"] == "close" and task["attempts"] >= self.times.close_attempts:
                log.error(
                    "closing a trade at its channel was given up",
                    extra={"channel": task["channel"], "order": task["subject"]},
                )
                return await self._done(task, "gave_up", error=str(exc))
            if task["kind"] == "bill" and task["attempts"] >= 48:
                log.error("a statement could not be fetched; given up", extra={"channel": task["channel"]})
                return await self._done(task, "gave_up", error=str(exc))
            wait = self.times.bill_retry if task["kind"] == "bill" else self._backoff(task["attempts"], 60.0)
            return await self._again(task, self.clock.now() + timedelta(seconds=wait), "retry", str(exc))

    def _backoff(self, attempts: int, base: float) -> float:
        return float(min(base * 2 ** max(attempts - 1, 0), self.times.retry_cap))

    async def _done(self, task: dict[str, Any], outcome: str, *, error: str = "") -> str:
        await (
            ChannelTask.update(
                {
                    ChannelTask.done_at: self.clock.now(),
                    ChannelTask.outcome: outcome[:64],
                    ChannelTask.last_error: error[:256],
                }
            )
            .where(ChannelTask.id == task["id"])
            .run()
        )
        return outcome

    async def _again(self, task: dict[str, Any], at: datetime, outcome: str, error: str = "") -> str:
        await (
            ChannelTask.update(
                {
                    ChannelTask.next_at: at,
                    ChannelTask.outcome: outcome[:64],
                    ChannelTask.last_error: error[:256],
                }
            )
            .where(ChannelTask.id == task["id"])
            .run()
        )
        return outcome

    # ---- payments whose notice has not come ------------------------------------------------------------
    async def _order(self, subject: str) -> dict[str, Any] | None:
        try:
            oid = uuid.UUID(subject)
        except ValueError:
            return None
        return await PaymentOrder.select().where(PaymentOrder.id == oid).first().run()

    @staticmethod
    def _order_ref(order: dict[str, Any]) -> dict[str, Any]:
        return {
            "order_ref": str(order["id"]),
            "amount": order["amount"],
            "description": order["description"],
            "expires_at": order["expires_at"],
        }

    async def _query(self, task: dict[str, Any], channel: Channel) -> str:
        """Ask the channel about a payment still ``paying`` there; with back-off until the order's
        payment window ends, then once after it."""
        order = await self._order(task["subject"])
        if order is None or order["channel"] != channel.name:
            return await self._done(task, "not_paying_there")
        if order["state"] in PAID_STATES:
            return await self._done(task, "paid")
        if Capability.QUERY not in channel.capabilities:
            return await self._done(task, "no_query")
        outcomes = await self.notifications.take(
            channel.name, await channel.query_payment(self._order_ref(order))
        )
        order = await self._order(task["subject"])
        assert order is not None
        if order["state"] not in PAYABLE_STATES or order["channel"] != channel.name:
            if outcomes:
                log.info(
                    "a payment whose notice had not come is recovered by query",
                    extra={"channel": channel.name, "order": task["subject"], "outcome": outcomes[0]},
                )
            return await self._done(task, "recovered" if order["state"] in PAID_STATES else order["state"])
        now = self.clock.now()
        expires = order["expires_at"]
        if expires is None:  # a deferred charge still processing: asked until it ends (a day at most)
            if now - order["updated_at"] > timedelta(days=1):
                return await self._done(task, "unanswered")
            return await self._again(
                task, now + timedelta(seconds=self._backoff(task["attempts"], 60.0)), "unpaid"
            )
        if now >= expires:
            return await self._done(task, "unpaid_after_expiry")  # the last ask, once the window closed
        at = now + timedelta(seconds=self._backoff(task["attempts"], self.times.query_after))
        return await self._again(task, min(at, expires + timedelta(seconds=30)), "unpaid")

    # ---- closing at the channel -------------------------------------------------------------------------
    async def _close(self, task: dict[str, Any], channel: Channel) -> str:
        """Close an expired order's trade at its channel; a channel answering that the trade is paid is
        asked about it, and the payment is applied (paid after the close: an overpayment to refund)."""
        order = await self._order(task["subject"])
        if order is None:
            return await self._done(task, "unknown_order")
        try:
            await channel.close_payment(self._order_ref(order))
        except AppError as exc:
            if getattr(exc, "code", "") != "channel_trade_paid":
                if getattr(exc, "code", "") == "channel_unavailable":
                    raise
                return await self._done(task, f"refused:{exc.code}", error=str(exc))
            outcomes = await self.notifications.take(
                channel.name, await channel.query_payment(self._order_ref(order))
            )
            log.warning(
                "an expired order was paid at its channel: the payment is applied",
                extra={"channel": channel.name, "order": task["subject"], "outcome": ",".join(outcomes)},
            )
            return await self._done(task, "paid_at_channel")
        return await self._done(task, "closed")

    # ---- refunds that take time ------------------------------------------------------------------------
    async def _refund(self, task: dict[str, Any], channel: Channel) -> str:
        """A refund still pending: ask the channel what became of it (QUERY); one it does not know, or a
        channel that cannot be asked, is asked for again with the same out_refund_no (refunded once)."""
        refund = await Refund.select().where(Refund.id == uuid.UUID(task["subject"])).first().run()
        if refund is None or refund["state"] != "pending":
            return await self._done(task, refund["state"] if refund else "unknown_refund")
        order = await PaymentOrder.select().where(PaymentOrder.id == refund["order"]).first().run()
        assert order is not None
        asked = {
            "order_ref": str(order["id"]),
            "refund_ref": str(refund["id"]),
            "amount": refund["amount"],
            "total": order["amount"],
            "channel_txn": order["channel_txn"],
            "reason": refund["reason"],
        }
        if Capability.QUERY in channel.capabilities:
            try:
                await self.notifications.take(channel.name, await channel.query_refund(asked))
            except NotFound:
                pass  # the channel does not know it: the request never reached it, asked again below
            if await self._refund_state(refund["id"]) != "pending":
                return await self._done(task, await self._refund_state(refund["id"]))
        # still processing, or unknown to the channel (a crash, a timeout, a query that cannot tell the
        # two apart): asked for again with the same out_refund_no, which the channel refunds once
        try:
            answer = await channel.request_refund(asked)
        except AppError as exc:
            if exc.code == "channel_unavailable":
                raise
            await self._refused(order, refund, exc)
            return await self._done(task, "failed", error=str(exc))
        await self.notifications.take(channel.name, answer)
        state = await self._refund_state(refund["id"])
        if state != "pending":
            return await self._done(task, state)
        at = self.clock.now() + timedelta(
            seconds=self._backoff(task["attempts"], self.times.refund_retry_after)
        )
        return await self._again(task, at, "processing")

    @staticmethod
    async def _refund_state(refund_id: uuid.UUID) -> str:
        row = await Refund.select(Refund.state).where(Refund.id == refund_id).first().run()
        return str(row["state"]) if row else "gone"

    async def _refused(self, order: dict[str, Any], refund: dict[str, Any], exc: AppError) -> None:
        """The channel refused a refund asked for again: it fails (holds no room), and the owner is told."""
        now = self.clock.now()
        async with db.transaction():
            failed = (
                await Refund.update(
                    {Refund.state: "failed", Refund.failure: exc.code[:64], Refund.failed_at: now}
                )
                .where((Refund.id == refund["id"]) & (Refund.state == "pending"))
                .returning(Refund.id)
                .run()
            )
            if failed:
                await outbox(
                    order,
                    "order.refund_failed",
                    now,
                    refund_id=str(refund["id"]),
                    refund_amount=refund["amount"],
                    refund_state="failed",
                    failure=exc.code,
                )

    # ---- statements ------------------------------------------------------------------------------------
    def china_today(self) -> date:
        return self.clock.now().astimezone(CHINA).date()

    async def bills_due(self) -> None:
        """A ``bill`` task for each channel with statements and each of the last days whose statement is
        out (once per channel and day: the task's key)."""
        now = self.clock.now()
        today = self.china_today()
        for channel in self.channels.values():
            if Capability.BILLS not in channel.capabilities:
                continue
            for back in range(1, self.times.bill_days + 1):
                day = today - timedelta(days=back)
                ready = datetime.combine(day + timedelta(days=1), channel.bill_ready_at, CHINA)
                if now >= ready:
                    await schedule("bill", channel.name, day.isoformat(), now, renew=False)

    async def _bill(self, task: dict[str, Any], channel: Channel) -> str:
        day = date.fromisoformat(task["subject"])
        if (
            await ChannelStatement.exists()
            .where(ChannelStatement.channel_day == f"{channel.name}/{day}")
            .run()
        ):
            return await self._done(task, "already_reconciled")
        try:
            statement = await channel.download_bill(day)
        except AppError as exc:
            if exc.code == "bill_invalid":
                return await self._unusable(task, channel, day, exc)
            if exc.code != "bill_not_ready":
                raise
            if self.clock.now().astimezone(CHINA).date() - day > timedelta(days=self.times.bill_days + 2):
                return await self._done(task, "never_published")
            return await self._again(
                task, self.clock.now() + timedelta(seconds=self.times.bill_retry), "not_ready"
            )
        run = await self.reconcile_statement(statement, source="auto")
        return await self._done(task, "mismatches" if run["mismatches"] else "reconciled")

    async def _unusable(self, task: dict[str, Any], channel: Channel, day: date, exc: AppError) -> str:
        """A statement the channel published that cannot be used (not its format, or its rows do not add
        up to its own totals): nothing is reconciled or kept, operators are told once (audit event
        ``statement_unusable``), and it is fetched again (the channel may publish it again) until given
        up like any statement."""
        if task["outcome"] != "unusable":
            await audit.record(
                "statement_unusable",
                actor_kind="system",
                actor_id="payments",
                subject=f"{channel.name}/{day}",
                channel=channel.name,
                day=day.isoformat(),
                error=str(exc)[:200],
            )
            log.error(
                "a channel's statement cannot be used; it is fetched again",
                extra={"channel": channel.name, "day": day.isoformat(), "error": str(exc)[:200]},
            )
        if task["attempts"] >= 48:
            return await self._done(task, "gave_up", error=str(exc))
        at = self.clock.now() + timedelta(seconds=self.times.bill_retry)
        return await self._again(task, at, "unusable", str(exc))

    async def reconcile_statement(self, statement: Statement, *, source: str) -> dict[str, Any]:
        """Keep the statement's file, reconcile it against the ledger, store the run; a run with
        mismatches is an audit event (operators see it on the console's reconciliation page)."""
        payments = sum(r.amount for r in statement.rows if r.type == "payment")
        refunds = sum(r.amount for r in statement.rows if r.type == "refund")
        totals = {
            "bill": dict(statement.totals),
            "rows": {"count": len(statement.rows), "payments": payments, "refunds": refunds},
        }
        async with db.transaction():  # the run and the file kept together, or neither
            run = await reconcile(statement, source=source)
            await (
                ChannelStatement.insert(
                    ChannelStatement(
                        channel=statement.channel,
                        day=statement.day.isoformat(),
                        channel_day=f"{statement.channel}/{statement.day}",
                        raw_gzip=gzip.compress(statement.raw),
                        media_type=statement.media_type,
                        rows=len(statement.rows),
                        totals=totals,
                        downloaded_at=self.clock.now(),
                    )
                )
                .on_conflict(target=ChannelStatement.channel_day, action="DO NOTHING")
                .run()
            )
        if run["mismatches"]:
            await audit.record(
                "reconciliation_mismatches",
                actor_kind="system",
                actor_id="payments",
                subject=f"{statement.channel}/{statement.day}",
                channel=statement.channel,
                day=statement.day.isoformat(),
                mismatches=len(run["mismatches"]),
                run_id=run["run_id"],
            )
            log.warning(
                "reconciliation found differences",
                extra={
                    "channel": statement.channel,
                    "day": statement.day.isoformat(),
                    "mismatches": len(run["mismatches"]),
                },
            )
        return run

"""Delivery on the channels that need work: scheduled messages' live events when they come due, Web Push
to each browser subscription, and the SMS fallback for urgent messages left unread.

Each round (every second, on every worker) finds what is due in the database and enqueues one job per
delivery attempt (``backend.jobs``: the Redis job queue, keyed by delivery and attempt, so workers never
run one attempt twice); the attempt claims its row before it sends (a conditional update that also
pushes its next try a lease ahead), so a worker killed mid-send leaves a row that is tried again. A
failure is retried with exponential back-off; after ``max_attempts`` the delivery is dead, and the log
says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from auth.pii import mask_phone
from auth.sms import SmsGateway
from backend import db
from backend.clock import Clock
from backend.crypto import Keyring
from backend.errors import AppError, NotFound
from backend.jobs import Jobs
from messages.services import MessageCentre, hint
from messages.tables import Message, MessageDelivery, PushSubscription
from messages.webpush import PushTarget, WebPushSender, check_target

log = logging.getLogger("shengshitong.messages.delivery")
PURGE_EVERY = 3600.0  # seconds between a worker's purges of messages past their retention
LEASE = 60.0  # seconds a claimed attempt has before it may be tried again (a worker died mid-send)
MAX_SUBSCRIPTIONS = 10  # browsers per citizen; the oldest goes when an eleventh subscribes


class PushSubscriptions:
    """Browsers' Web Push subscriptions, sealed at rest (the endpoint is a bearer capability)."""

    def __init__(self, clock: Clock, pii: Keyring, allowed_hosts: tuple[str, ...]) -> None:
        self._clock = clock
        self._pii = pii
        self.allowed_hosts = allowed_hosts

    async def add(
        self, citizen_id: str, device_id: str, endpoint: str, p256dh: str, auth: str
    ) -> dict[str, Any]:
        target = PushTarget(endpoint, p256dh, auth)
        host = check_target(target, allowed_hosts=self.allowed_hosts)
        digest = hashlib.sha256(endpoint.encode()).hexdigest()
        sub_id = uuid.uuid4()
        now = self._clock.now()
        sealed = self._pii.encrypt(
            json.dumps({"endpoint": endpoint, "p256dh": p256dh, "auth": auth}), f"push:{digest}"
        )
        async with db.transaction():
            # a browser is one subscription: subscribing again (another account on it) takes it over
            await PushSubscription.delete().where(PushSubscription.endpoint_hash == digest).run()
            await PushSubscription.insert(
                PushSubscription(
                    id=sub_id,
                    citizen_id=citizen_id,
                    device_id=device_id[:128],
                    endpoint_hash=digest,
                    sealed=sealed,
                    host=host,
                    created_at=now,
                )
            ).run()
            live = (
                await PushSubscription.select(PushSubscription.id)
                .where((PushSubscription.citizen_id == citizen_id) & PushSubscription.gone_at.is_null())
                .order_by(PushSubscription.created_at, ascending=False)
                .run()
            )
            if extra := [r["id"] for r in live[MAX_SUBSCRIPTIONS:]]:
                await PushSubscription.delete().where(PushSubscription.id.is_in(extra)).run()
        return {"id": str(sub_id), "host": host, "created_at": now}

    async def of_citizen(self, citizen_id: str) -> list[dict[str, Any]]:
        rows = (
            await PushSubscription.select()
            .where(PushSubscription.citizen_id == citizen_id)
            .order_by(PushSubscription.created_at, ascending=False)
            .run()
        )
        return [
            {
                "id": str(r["id"]),
                "host": r["host"],
                "created_at": r["created_at"],
                "last_ok_at": r["last_ok_at"],
                "gone": r["gone_at"] is not None,
            }
            for r in rows
        ]

    async def remove(self, citizen_id: str, sub_id: str) -> None:
        try:
            sid = uuid.UUID(sub_id)
        except ValueError:
            raise NotFound("no such push subscription", code="push_subscription_not_found") from None
        rows = (
            await PushSubscription.delete()
            .where((PushSubscription.id == sid) & (PushSubscription.citizen_id == citizen_id))
            .returning(PushSubscription.id)
            .run()
        )
        if not rows:
            raise NotFound("no such push subscription", code="push_subscription_not_found")

    async def remove_device(self, citizen_id: str, device_id: str) -> None:
        """A device signed out: its browser gets nothing more."""
        await (
            PushSubscription.delete()
            .where((PushSubscription.citizen_id == citizen_id) & (PushSubscription.device_id == device_id))
            .run()
        )

    def target(self, row: dict[str, Any]) -> PushTarget:
        raw = json.loads(self._pii.decrypt(row["sealed"], f"push:{row['endpoint_hash']}"))
        return PushTarget(raw["endpoint"], raw["p256dh"], raw["auth"])


class Deliveries:
    def __init__(
        self,
        clock: Clock,
        centre: MessageCentre,
        jobs: Jobs,
        subscriptions: PushSubscriptions,
        sms: SmsGateway,
        phone_of: Callable[[str], Awaitable[str | None]],
        *,
        push: WebPushSender | None = None,
        base_delay: float = 5.0,
        max_attempts: int = 8,
        retention_days: int = 365,
    ) -> None:
        self._clock = clock
        self._centre = centre
        self.jobs = jobs
        self._subs = subscriptions
        self._sms = sms
        self._phone_of = phone_of
        self.push = push
        self.base_delay = base_delay
        self.max_attempts = max_attempts
        self.retention = timedelta(days=retention_days)
        self._purged_at = float("-inf")  # this worker's last purge (monotonic)
        self._task: asyncio.Task[None] | None = None
        jobs.register("message_attempt", self.attempt)

    async def start(self, interval: float = 1.0) -> None:
        await self.jobs.ready()
        if interval > 0:
            self._task = asyncio.create_task(self._loop(interval), name="message-deliveries")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.jobs.stop()
        if self.push is not None:
            await self.push.close()

    async def _loop(self, interval: float) -> None:
        while True:
            try:
                await self.tick()
                if time.monotonic() - self._purged_at >= PURGE_EVERY:
                    self._purged_at = time.monotonic()
                    await self.purge()
            except Exception:
                log.exception("message delivery round failed; retrying")
            await asyncio.sleep(interval)

    async def purge(self, chunk: int = 5000, most: int = 20) -> int:
        """Messages older than the retention go, with their delivery log, a chunk per transaction (by the
        creation time's index). Every worker may run it: deleting twice deletes nothing more."""
        cutoff = self._clock.now() - self.retention
        gone = 0
        for _ in range(most):
            old = [
                r["id"]
                for r in await Message.select(Message.id)
                .where(Message.created_at < cutoff)
                .limit(chunk)
                .run()
            ]
            if not old:
                break
            async with db.transaction():
                await MessageDelivery.delete().where(MessageDelivery.message.is_in(old)).run()
                await Message.delete().where(Message.id.is_in(old)).run()
            gone += len(old)
            if len(old) < chunk:
                break
        if gone:
            log.info("old messages purged", extra={"messages": gone, "before": cutoff.isoformat()})
        return gone

    async def tick(self) -> int:
        """Publish the live events of messages that came due, and start every due attempt."""
        if not await self.jobs.ready():
            return 0
        await self.announce_due()
        due = (
            await MessageDelivery.select(MessageDelivery.id, MessageDelivery.attempts)
            .where(
                (MessageDelivery.state == "pending") & (MessageDelivery.next_attempt_at <= self._clock.now())
            )
            .order_by(MessageDelivery.next_attempt_at)
            .limit(200)
            .run()
        )
        for d in due:
            await self.jobs.enqueue(
                "message_attempt", key=f"msg:{d['id']}:{d['attempts']}", delivery_id=str(d["id"])
            )
        return len(due)

    async def announce_due(self) -> int:
        """Scheduled messages whose time came: their live event, once (a conditional update claims them)."""
        now = self._clock.now()
        due = (
            await Message.select(Message.id)
            .where(
                Message.notified_at.is_null() & (Message.visible_at <= now) & Message.cancelled_at.is_null()
            )
            .limit(500)
            .run()
        )
        if not due:
            return 0
        rows = (
            await Message.update({Message.notified_at: now})
            .where(Message.id.is_in([r["id"] for r in due]) & Message.notified_at.is_null())
            .returning(Message.id, Message.citizen_id, Message.sender, Message.category, Message.content)
            .run()
        )
        await self._centre.tell([(r["citizen_id"], hint(r)) for r in rows])
        return len(rows)

    def backoff(self, attempts: int) -> float:
        return float(min(self.base_delay * (2 ** (attempts - 1)), 3600))

    async def attempt(self, delivery_id: str) -> bool:
        """One attempt of one delivery: claimed first, so a second runner of it does nothing."""
        now = self._clock.now()
        claimed = (
            await MessageDelivery.update(
                {
                    MessageDelivery.attempts: MessageDelivery.attempts + 1,
                    MessageDelivery.next_attempt_at: now + timedelta(seconds=LEASE),
                }
            )
            .where(
                (MessageDelivery.id == uuid.UUID(delivery_id))
                & (MessageDelivery.state == "pending")
                & (MessageDelivery.next_attempt_at <= now)
            )
            .returning(*MessageDelivery.all_columns())
            .run()
        )
        if not claimed:
            return False
        d = claimed[0]
        message = await Message.select().where(Message.id == d["message"]).first().run()
        if message is None or message["cancelled_at"] is not None or message["deleted_at"] is not None:
            return await self._done(d, "cancelled", "the message was withdrawn or deleted")
        if d["channel"] == "sms":
            if message["read_at"] is not None:
                return await self._done(d, "skipped", "read in the app before the SMS was due")
            ok, error = await self._send_sms(message)
        else:
            if message["read_at"] is not None:
                return await self._done(d, "skipped", "read in the app before the push was due")
            ok, error, final = await self._send_push(d, message)
            if final:
                return await self._done(d, "skipped", error)
        if ok:
            return await self._done(d, "sent", "")
        number = d["attempts"]
        if number >= self.max_attempts:
            log.error("message delivery gave up", extra={"delivery": delivery_id, "channel": d["channel"]})
            return await self._done(d, "dead", error)
        await (
            MessageDelivery.update(
                {
                    MessageDelivery.next_attempt_at: self._clock.now()
                    + timedelta(seconds=self.backoff(number)),
                    MessageDelivery.last_error: error[:256],
                }
            )
            .where(MessageDelivery.id == d["id"])
            .run()
        )
        return False

    async def _done(self, d: dict[str, Any], state: str, error: str) -> bool:
        now = self._clock.now()
        await (
            MessageDelivery.update(
                {
                    MessageDelivery.state: state,
                    MessageDelivery.last_error: error[:256],
                    MessageDelivery.sent_at: now if state == "sent" else None,
                    MessageDelivery.next_attempt_at: None,
                }
            )
            .where(MessageDelivery.id == d["id"])
            .run()
        )
        log.info(
            "message delivery", extra={"delivery": str(d["id"]), "channel": d["channel"], "state": state}
        )
        return state == "sent"

    async def _send_sms(self, message: dict[str, Any]) -> tuple[bool, str]:
        phone = await self._phone_of(message["citizen_id"])
        if phone is None:
            return False, "the account has no reachable phone"
        masked = db.json_value(message["content"])["masked"]["zh-CN"]
        text = f"【盛事通】{masked['title']}：{masked['body']} 详情请打开盛事通查看。"
        try:
            await self._sms.send(phone, text, at=self._clock.now())
        except AppError as exc:
            log.warning("sms fallback failed for %s: %s", mask_phone(phone), exc.code)
            return False, exc.code
        return True, ""

    async def _send_push(self, d: dict[str, Any], message: dict[str, Any]) -> tuple[bool, str, bool]:
        """(ok, error, final): final when retrying cannot help (the subscription is gone)."""
        if self.push is None:
            return False, "web push is not configured", True
        sub = (
            await PushSubscription.select().where(PushSubscription.id == uuid.UUID(d["target"])).first().run()
        )
        if sub is None or sub["gone_at"] is not None:
            return False, "the browser unsubscribed", True
        text = db.json_value(message["content"])["masked"]
        payload = json.dumps(
            {
                "id": str(message["id"]),
                "sender": message["sender"],
                "category": message["category"],
                "title": {"zh-CN": text["zh-CN"]["title"], "en": text["en"]["title"]},
                "body": {"zh-CN": text["zh-CN"]["body"], "en": text["en"]["body"]},
                "link": message["link"],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        outcome = await self.push.send(
            self._subs.target(sub),
            payload,
            ttl=24 * 3600,
            urgency="high" if message["urgent"] else "normal",
            topic=hashlib.sha256(str(message["id"]).encode()).hexdigest()[:32],
        )
        if outcome.gone:
            await (
                PushSubscription.update({PushSubscription.gone_at: self._clock.now()})
                .where(PushSubscription.id == sub["id"])
                .run()
            )
            return False, f"the push service says the subscription is gone (HTTP {outcome.status})", True
        if outcome.ok:
            await (
                PushSubscription.update({PushSubscription.last_ok_at: self._clock.now()})
                .where(PushSubscription.id == sub["id"])
                .run()
            )
            return True, "", False
        return False, outcome.error or f"HTTP {outcome.status}", False

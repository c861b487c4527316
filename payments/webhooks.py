"""Outgoing events: the outbox fans out to deliveries, each attempted with exponential back-off and
logged. Signed like Stripe's: ``Shengshitong-Signature: t=<unix>,v1=<hex HMAC-SHA256("t.raw_body")>``
with one ``v1`` per active secret while a secret rotates.

Scheduling: :meth:`WebhookDispatcher.tick` moves new outbox events into deliveries and starts every due
attempt. With Redis configured, attempts are jobs on a saq queue (one job key per delivery attempt, so
several workers never send one attempt twice); in the embedded default the same attempt code runs
in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import msgspec

from backend import db
from backend.clock import Clock
from backend.crypto import Keyring
from backend.errors import InvalidInput, NotFound
from backend.jobs import Jobs
from payments.events import OrderEvent, OwnerSubscribers
from payments.tables import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("shengshitong.webhooks")
SIGNATURE_HEADER = "Shengshitong-Signature"


def sign(body: bytes, secrets_: list[str], ts: int) -> str:
    parts = [f"t={ts}"] + [
        "v1=" + hmac.new(s.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest() for s in secrets_
    ]
    return ",".join(parts)


def verify_signature(header: str, body: bytes, secret: str, *, now: float, tolerance: int = 300) -> bool:
    """What a merchant runs: any v1 matching its secret, and a fresh timestamp."""
    items = [p.split("=", 1) for p in header.split(",") if "=" in p]
    ts = next((int(v) for k, v in items if k == "t" and v.isdigit()), None)
    if ts is None or abs(now - ts) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in items)


class WebhookEndpoints:
    def __init__(self, clock: Clock, pii: Keyring) -> None:
        self.clock = clock
        self._seal = pii

    async def add(self, owner: str, url: str) -> dict[str, Any]:
        if not url.startswith(("https://", "http://")):
            raise InvalidInput("the webhook URL must be http(s)", code="invalid_url")
        secret = "whsec_" + secrets.token_urlsafe(24)
        endpoint_id = uuid.uuid4()
        await WebhookEndpoint.insert(
            WebhookEndpoint(
                id=endpoint_id,
                owner=owner,
                url=url,
                created_at=self.clock.now(),
                secrets=[self._seal.encrypt(secret, f"webhook:{endpoint_id}")],
            )
        ).run()
        return {"endpoint_id": str(endpoint_id), "owner": owner, "url": url, "secret": secret}

    async def rotate(self, endpoint_id: str) -> dict[str, Any]:
        """A new secret signs from now on; the old one keeps signing too until :meth:`retire_old`."""
        row = await WebhookEndpoint.select().where(WebhookEndpoint.id == uuid.UUID(endpoint_id)).first().run()
        if row is None:
            raise NotFound("no such webhook endpoint")
        secret = "whsec_" + secrets.token_urlsafe(24)
        sealed = [self._seal.encrypt(secret, f"webhook:{endpoint_id}"), *_list(row["secrets"])[:1]]
        await (
            WebhookEndpoint.update({WebhookEndpoint.secrets: sealed})
            .where(WebhookEndpoint.id == row["id"])
            .run()
        )
        return {"endpoint_id": endpoint_id, "secret": secret}

    def secrets_of(self, row: dict[str, Any]) -> list[str]:
        return [self._seal.decrypt(s, f"webhook:{row['id']}") for s in _list(row["secrets"])]


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else list(json.loads(value))


class WebhookDispatcher:
    def __init__(
        self,
        clock: Clock,
        endpoints: WebhookEndpoints,
        *,
        subscribers: OwnerSubscribers,
        queue_name: str,  # carries the deployment's store prefix (deployments may share one Redis)
        redis_url: str = "",
        base_delay: float = 5.0,
        max_attempts: int = 12,
        transport: httpx.AsyncBaseTransport | None = None,
        changed: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
    ) -> None:
        self.clock = clock
        self.changed = changed  # told of every batch of events fanned out (after their commit)
        self.endpoints = endpoints
        self.subscribers = subscribers  # the platform's handlers of order events, by owner kind
        self.base_delay = base_delay
        self.max_attempts = max_attempts
        self._http = httpx.AsyncClient(timeout=10, transport=transport, follow_redirects=False)
        # attempts run as jobs on the Redis queue (saq) when Redis is configured, in-process otherwise
        self.jobs = Jobs(redis_url, queue_name)
        self.jobs.register("webhook_attempt", self.attempt)
        self._loop_task: asyncio.Task[None] | None = None

    # ---- life cycle ------------------------------------------------------------------------------
    async def start(self, interval: float = 1.0) -> None:
        # a Redis that is down now is retried each round (the app starts and reports it in /readyz)
        await self.jobs.ready()
        if interval > 0:
            self._loop_task = asyncio.create_task(self._loop(interval), name="webhook-dispatcher")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self.jobs.stop()
        await self._http.aclose()

    async def _loop(self, interval: float) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("webhook dispatch round failed; retrying")
            await asyncio.sleep(interval)

    # ---- scheduling ------------------------------------------------------------------------------
    async def fan_out(self) -> int:
        """Turn new outbox events into one delivery per target (idempotent: a unique key per pair)."""
        events = (
            await OutboxEvent.select(OutboxEvent.id, OutboxEvent.payload)
            .where(OutboxEvent.dispatched_at.is_null())
            .order_by(OutboxEvent.created_at)
            .limit(500)
            .run()
        )
        now = self.clock.now()
        for event in events:
            payload = event["payload"] if isinstance(event["payload"], dict) else json.loads(event["payload"])
            owner = payload["owner"]
            targets = [
                f"endpoint:{e['id']}"
                for e in await WebhookEndpoint.select(WebhookEndpoint.id)
                .where((WebhookEndpoint.owner == owner) & WebhookEndpoint.revoked_at.is_null())
                .run()
            ]
            if self.subscribers.handler(owner.partition(":")[0]) is not None:
                targets.append(owner)
            targets.extend(f"observer:{name}" for name in self.subscribers.observers())
            async with db.transaction():
                for target in targets:
                    await (
                        WebhookDelivery.insert(
                            WebhookDelivery(
                                event=event["id"],
                                target=target,
                                event_target=f"{event['id']}/{target}",
                                next_attempt_at=now,
                            )
                        )
                        .on_conflict(target=WebhookDelivery.event_target, action="DO NOTHING")
                        .run()
                    )
                await (
                    OutboxEvent.update({OutboxEvent.dispatched_at: now})
                    .where(OutboxEvent.id == event["id"])
                    .run()
                )
        if events and self.changed is not None:
            try:
                await self.changed(
                    [
                        e["payload"] if isinstance(e["payload"], dict) else json.loads(e["payload"])
                        for e in events
                    ]
                )
            except Exception:  # a count that is not forgotten expires; the events are fanned out
                log.exception("order events' listener failed")
        return len(events)

    async def tick(self) -> int:
        """Fan out, then start every due attempt (in-process, or as saq jobs). Returns attempts started."""
        if not await self.jobs.ready():
            return 0
        await self.fan_out()
        due = (
            await WebhookDelivery.select(WebhookDelivery.id, WebhookDelivery.attempts)
            .where(
                (WebhookDelivery.state == "pending") & (WebhookDelivery.next_attempt_at <= self.clock.now())
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(200)
            .run()
        )
        for d in due:
            # the key names the attempt: every worker may enqueue it, the queue runs it once
            await self.jobs.enqueue(
                "webhook_attempt", key=f"{d['id']}:{d['attempts']}", delivery_id=str(d["id"]), timeout=30
            )
        return len(due)

    async def drain(self, within: float = 10.0) -> None:
        """Wait until the queue has run every job it holds (tests, graceful shutdown)."""
        await self.jobs.drain(within)

    # ---- one attempt -------------------------------------------------------------------------------
    def backoff(self, attempts: int) -> float:
        return float(min(self.base_delay * (2 ** (attempts - 1)), 6 * 3600))

    async def attempt(self, delivery_id: str) -> bool:
        row = (
            await WebhookDelivery.select(WebhookDelivery.all_columns(), WebhookDelivery.event.all_columns())  # type: ignore[arg-type]
            .where(WebhookDelivery.id == uuid.UUID(delivery_id))
            .first()
            .run()
        )
        if row is None or row["state"] != "pending" or row["next_attempt_at"] > self.clock.now():
            return False
        number = row["attempts"] + 1
        payload = (
            row["event.payload"]
            if isinstance(row["event.payload"], dict)
            else json.loads(row["event.payload"])
        )
        event = {
            "id": str(row["event.id"]),
            "type": row["event.type"],
            "created": int(row["event.created_at"].timestamp()),
            "data": payload,
        }
        started = time.perf_counter()
        ok, status, error = await self._send(row["target"], event)
        now = self.clock.now()
        await WebhookAttempt.insert(
            WebhookAttempt(
                delivery=row["id"], attempt=number, at=now, status_code=status, error=error[:256], ok=ok
            )
        ).run()
        if ok:
            values: dict[Any, Any] = {WebhookDelivery.state: "delivered", WebhookDelivery.delivered_at: now}
        elif number >= self.max_attempts:
            values = {WebhookDelivery.state: "dead"}
            log.error("webhook delivery gave up", extra={"delivery": delivery_id, "attempts": number})
        else:
            values = {WebhookDelivery.next_attempt_at: now + timedelta(seconds=self.backoff(number))}
        values.update({WebhookDelivery.attempts: number, WebhookDelivery.last_error: error[:256]})
        await (
            WebhookDelivery.update(values)
            .where((WebhookDelivery.id == row["id"]) & (WebhookDelivery.attempts == row["attempts"]))
            .run()
        )
        log.info(
            "webhook attempt",
            extra={
                "delivery": delivery_id,
                "attempt": number,
                "ok": ok,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return ok

    async def _send(self, target: str, event: dict[str, Any]) -> tuple[bool, int, str]:
        kind, _, ident = target.partition(":")
        if kind != "endpoint":
            order_event = OrderEvent.from_outbox(event)
            handler = (
                self.subscribers.observer(ident) if kind == "observer" else self.subscribers.handler(kind)
            )
            if handler is None:
                return False, 0, f"no handler of {kind} events"
            try:
                await asyncio.wait_for(
                    handler(order_event.owner if kind == "observer" else ident, order_event), 30
                )
            except Exception as exc:
                return False, 0, f"{type(exc).__name__}: {exc}"
            return True, 0, ""
        endpoint = await WebhookEndpoint.select().where(WebhookEndpoint.id == uuid.UUID(ident)).first().run()
        if endpoint is None or endpoint["revoked_at"] is not None:
            return False, 0, "endpoint removed"
        body = msgspec.json.encode(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Shengshitong-Webhooks/1",
            SIGNATURE_HEADER: sign(body, self.endpoints.secrets_of(endpoint), int(self.clock.time())),
            "Shengshitong-Event-Id": event["id"],
        }
        try:
            r = await self._http.post(endpoint["url"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            return False, 0, f"{type(exc).__name__}"
        return (
            200 <= r.status_code < 300,
            r.status_code,
            "" if r.status_code < 300 else f"HTTP {r.status_code}",
        )

"""Telling the fiscal system (财政非税收入收缴系统) of each paid notice.

Every paid notice gets one delivery row, written in the transaction that records the payment; the
delivery is attempted until the fiscal system answers 2xx, with exponential back-off, and each attempt is
logged (:class:`fees.tables.FiscalAttempt`). Attempts are jobs on the Redis queue (saq) when Redis is
configured and run in-process in the embedded default, as the payment centre's webhooks are
(:class:`backend.jobs.Jobs`): the rows are the truth, a job's key names one attempt.

Signature (docs/fees.md): ``Shengshitong-Fiscal-Signature: t=<unix seconds>,kid=<key id>,sig=<base64url>``
where ``sig`` is ES256 (ECDSA P-256 with SHA-256, the 64-byte r||s form JWS uses) over the bytes
``"<t>." + body``. The platform holds the private key (sealed in the key store, purpose
``fiscal``); the public keys are published as a JWK set at ``GET /api/v1/fees/fiscal-keys``.

The fiscal system's answer may carry the e-receipt (电子票据) number: ``{"receipt_no": "..."}``; it is
written on the notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from backend.clock import Clock
from backend.crypto import b64u
from backend.errors import NotFound
from backend.jobs import Jobs
from backend.keystore import KeyStore
from fees.tables import FeeNotice, FiscalAttempt, FiscalDelivery

log = logging.getLogger("shengshitong.fees.fiscal")
SIGNATURE_HEADER = "Shengshitong-Fiscal-Signature"
RECEIPT = r"^[A-Za-z0-9._:/-]{1,64}\Z"  # \Z: $ would allow a final newline


class FiscalAnswer(msgspec.Struct):
    receipt_no: str = ""


def sign(key: Any, kid: str, body: bytes, ts: int) -> str:
    der = key.sign(f"{ts}.".encode() + body, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"t={ts},kid={kid},sig={b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class FiscalNotifier:
    def __init__(
        self,
        clock: Clock,
        keys: KeyStore,
        *,
        url: str,
        queue_name: str,
        redis_url: str = "",
        base_delay: float = 5.0,
        max_attempts: int = 12,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.clock = clock
        self.keys = keys
        self.url = url
        self.base_delay = base_delay
        self.max_attempts = max_attempts
        self._http = httpx.AsyncClient(timeout=10, transport=transport, follow_redirects=False)
        self.jobs = Jobs(redis_url, queue_name)
        self.jobs.register("fiscal_attempt", self.attempt)
        self._loop_task: asyncio.Task[None] | None = None

    def use_transport(self, transport: httpx.AsyncBaseTransport) -> None:
        """Send through ``transport`` from now on (tests and embedders: a local fiscal double)."""
        self._http = httpx.AsyncClient(timeout=10, transport=transport, follow_redirects=False)

    # ---- life cycle ------------------------------------------------------------------------------
    async def start(self, interval: float) -> None:
        await self.keys.ensure()
        await self.jobs.ready()
        if interval > 0:
            self._loop_task = asyncio.create_task(self._loop(interval), name="fiscal-notifier")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        await self.jobs.stop()
        await self._http.aclose()

    async def _loop(self, interval: float) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("fiscal delivery round failed; retrying")
            await asyncio.sleep(interval)

    async def published(self) -> list[dict[str, Any]]:
        """The public keys a fiscal system verifies our signatures with (a JWK set's ``keys``)."""
        await self.keys.ensure()
        return [k.jwk for k in await self.keys.published()]

    # ---- scheduling ------------------------------------------------------------------------------
    async def tick(self) -> int:
        """Start every due attempt (in-process, or as saq jobs). Returns how many were started."""
        if not self.url or not await self.jobs.ready():
            return 0  # no fiscal system configured: the deliveries wait, pending
        due = (
            await FiscalDelivery.select(FiscalDelivery.id, FiscalDelivery.attempts)
            .where((FiscalDelivery.state == "pending") & (FiscalDelivery.next_attempt_at <= self.clock.now()))
            .order_by(FiscalDelivery.next_attempt_at)
            .limit(200)
            .run()
        )
        for d in due:
            await self.jobs.enqueue(
                "fiscal_attempt",
                key=f"fiscal:{d['id']}:{d['attempts']}",
                delivery_id=str(d["id"]),
                timeout=30,
            )
        return len(due)

    async def drain(self, within: float = 10.0) -> None:
        await self.jobs.drain(within)

    def backoff(self, attempts: int) -> float:
        return float(min(self.base_delay * (2 ** (attempts - 1)), 6 * 3600))

    async def resend(self, notice_no: str) -> bool:
        """An operator sends a delivery that was given up (dead) again, from attempt one's delay."""
        updated = (
            await FiscalDelivery.update(
                {FiscalDelivery.state: "pending", FiscalDelivery.next_attempt_at: self.clock.now()}
            )
            .where((FiscalDelivery.notice_no == notice_no) & (FiscalDelivery.state == "dead"))
            .returning(FiscalDelivery.id)
            .run()
        )
        return bool(updated)

    async def delivery_log(self, notice_no: str) -> dict[str, Any]:
        """A paid notice's delivery and every attempt of it, oldest first (operators)."""
        row = await FiscalDelivery.select().where(FiscalDelivery.notice_no == notice_no).first().run()
        if row is None:
            raise NotFound(
                "no notification to the fiscal system for this notice (it is not paid)",
                code="fiscal_delivery_not_found",
            )
        attempts = (
            await FiscalAttempt.select(
                FiscalAttempt.attempt,
                FiscalAttempt.at,
                FiscalAttempt.status_code,
                FiscalAttempt.ok,
                FiscalAttempt.error,
                FiscalAttempt.receipt_no,
            )
            .where(FiscalAttempt.delivery == row["id"])
            .order_by(FiscalAttempt.attempt)
            .run()
        )
        return {
            "notice_no": notice_no,
            "state": row["state"],
            "attempts": row["attempts"],
            "next_attempt_at": row["next_attempt_at"] if row["state"] == "pending" else None,
            "last_error": row["last_error"],
            "created_at": row["created_at"],
            "delivered_at": row["delivered_at"],
            "log": attempts,
        }

    # ---- one attempt -----------------------------------------------------------------------------
    async def attempt(self, delivery_id: str) -> bool:
        row = await FiscalDelivery.select().where(FiscalDelivery.id == uuid.UUID(delivery_id)).first().run()
        if row is None or row["state"] != "pending" or row["next_attempt_at"] > self.clock.now():
            return False
        # claim this attempt first: of two workers running it, one sends (the other finds it taken)
        number = row["attempts"] + 1
        claimed = (
            await FiscalDelivery.update(
                {
                    FiscalDelivery.attempts: number,
                    FiscalDelivery.next_attempt_at: self.clock.now() + timedelta(seconds=60),
                }
            )
            .where((FiscalDelivery.id == row["id"]) & (FiscalDelivery.attempts == row["attempts"]))
            .returning(FiscalDelivery.id)
            .run()
        )
        if not claimed:
            return False
        payload = row["payload"] if isinstance(row["payload"], dict) else json.loads(row["payload"])
        started = time.perf_counter()
        ok, status, error, receipt = await self._send(payload)
        now = self.clock.now()
        await FiscalAttempt.insert(
            FiscalAttempt(
                delivery=row["id"],
                attempt=number,
                at=now,
                status_code=status,
                ok=ok,
                error=error[:256],
                receipt_no=receipt,
            )
        ).run()
        values: dict[Any, Any] = {FiscalDelivery.last_error: error[:256]}
        if ok:
            values.update({FiscalDelivery.state: "delivered", FiscalDelivery.delivered_at: now})
            if receipt:
                await (
                    FeeNotice.update({FeeNotice.receipt_no: receipt, FeeNotice.updated_at: now})
                    .where(FeeNotice.id == row["notice"])
                    .run()
                )
        elif number >= self.max_attempts:
            values[FiscalDelivery.state] = "dead"
            log.error("fiscal delivery gave up", extra={"notice_no": row["notice_no"], "attempts": number})
        else:
            values[FiscalDelivery.next_attempt_at] = now + timedelta(seconds=self.backoff(number))
        await FiscalDelivery.update(values).where(FiscalDelivery.id == row["id"]).run()
        log.info(
            "fiscal attempt",
            extra={
                "notice_no": row["notice_no"],
                "attempt": number,
                "ok": ok,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return ok

    async def _send(self, payload: dict[str, Any]) -> tuple[bool, int, str, str]:
        key = await self.keys.active()
        body = msgspec.json.encode(payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Shengshitong-Fees/1",
            SIGNATURE_HEADER: sign(key.private, key.kid, body, int(self.clock.time())),
            "Shengshitong-Notice-No": str(payload["notice_no"]),
        }
        try:
            r = await self._http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return False, 0, type(exc).__name__, ""
        if not 200 <= r.status_code < 300:
            return False, r.status_code, f"HTTP {r.status_code}", ""
        receipt = ""
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            answer = msgspec.json.decode(r.content, type=FiscalAnswer) if r.content else FiscalAnswer()
            receipt = answer.receipt_no if _receipt_ok(answer.receipt_no) else ""
        return True, r.status_code, "", receipt


def _receipt_ok(value: str) -> bool:
    return bool(re.match(RECEIPT, value))

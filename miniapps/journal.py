"""The gate's journal: fast decisions, committed in the shared store, written to the database behind them.

A mini-app that decides from state (:meth:`miniapps.contract.MiniApp.decide`) has its decision, the
rider's new state and the decision's effect committed in one atomic step of the store, which also
appends an :class:`Entry` to the journal (a Redis stream with Redis). The gate answers after that step:
what a gate was told is in the journal. The journal is then applied to the database (the pairwise ids,
the scans' final records, and each mini-app's :meth:`~miniapps.contract.MiniApp.apply`) in batches, one
transaction per batch, and each applied entry is removed. A worker killed at any point leaves its
entries in the journal; they are applied again (every step is idempotent: unique keys) by whichever
worker holds the drain lease next, at most :data:`LEASE_TTL` later.

One worker at a time drains (the lease): entries are applied in the order they were decided, and two
workers never apply the same batch at once. ``inline`` mode (one process, the embedded default, and
tests that read the books right after a scan) applies each entry in the request before the gate is
answered; the drainer then only picks up entries a request left behind (it failed or died).

The journal is as durable as the store: run Redis with ``appendonly yes`` (and ``appendfsync
everysec`` or stricter) and ``maxmemory-policy noeviction`` in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

import msgspec

from auth.pairwise import Pairwise
from auth.tables import PairwiseSubject
from backend import db
from backend.clock import Clock
from backend.store import Store
from miniapps.contract import Effect, MiniApp
from miniapps.tables import ScanRecord

log = logging.getLogger("shengshitong.journal")

STREAM = "gate:journal"
LEASE = "gate:journal:lease"
DEAD = "gate:journal:dead:"  # + entry id: entries that failed this many times alone, kept for operators
LEASE_TTL = 5.0
MAX_FAILURES = 5


class Entry(msgspec.Struct, array_like=True, frozen=True):
    """One fast decision as the journal keeps it."""

    app_id: str
    citizen_id: str
    openid: str
    record: dict[str, Any]  # the scan's final record (ScanRecord's columns)
    effect: bytes  # the mini-app's effect (``Fast.effect``)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)


def encode(entry: Entry) -> bytes:
    return _encoder.encode(entry)


def _age_ms(entry_id: str, now_ms: int) -> int:
    return now_ms - int(entry_id.partition("-")[0])


class Journal:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        apps: dict[str, MiniApp],
        pairwise: Pairwise,
        *,
        inline: bool,
        batch: int = 500,
        interval: float = 0.05,
        inline_grace: float = 5.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.apps = apps
        self.pairwise = pairwise
        self.inline = inline
        self.batch = batch
        self.interval = interval
        # inline: entries a request has not applied within this long were left behind
        self.min_age_ms = int(inline_grace * 1000) if inline else 0
        self._me = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failures: dict[str, int] = {}

    # ---- writing ---------------------------------------------------------------------------------
    async def commit(
        self,
        entry: Entry,
        *,
        state_key: str,
        expected: bytes | None,
        state: bytes | None,
        state_ttl: float,
        once_key: str,
        once_value: bytes,
        once_ttl: float,
        add_key: str = "",
        add: int = 0,
    ) -> str:
        """Commit a decision (see :meth:`backend.store.Store.commit`); in inline mode also apply it.
        Returns the entry id, or ``"decided"`` / ``"changed"`` when nothing was committed."""
        entry_id = await self.store.commit(
            state_key=state_key,
            expected=expected,
            state=state,
            state_ttl=state_ttl,
            once_key=once_key,
            once_value=once_value,
            once_ttl=once_ttl,
            add_key=add_key,
            add=add,
            stream=STREAM,
            entry=encode(entry),
        )
        if entry_id in ("decided", "changed"):
            return entry_id
        if self.inline:
            try:
                await self._apply([entry])
                await self.store.stream_delete(STREAM, entry_id)
            except Exception:  # committed: the drainer applies it later; the gate's answer stands
                log.exception("a decision's writes failed; the journal keeps them", extra={"entry": entry_id})
        return entry_id

    # ---- applying --------------------------------------------------------------------------------
    async def _apply(self, entries: list[Entry]) -> None:
        """Apply entries in one transaction: pairwise ids, the scans' final records, the mini-apps'
        effects (each app's in decision order)."""
        pairs = {f"{e.app_id}/{e.openid}": e.citizen_id for e in entries}
        by_app: dict[str, list[Effect]] = {}
        for e in entries:
            by_app.setdefault(e.app_id, []).append(
                Effect(openid=e.openid, record=e.record["scanner_record"], data=e.effect)
            )
        now = self.clock.now()
        async with db.transaction():
            await db.bulk_insert(
                PairwiseSubject,
                [{"app_openid": k, "citizen_id": c} for k, c in pairs.items()],
                on_conflict_do_nothing="app_openid",
            )
            await db.bulk_insert(
                ScanRecord,
                [{**e.record, "received_at": now} for e in entries],
                on_conflict_do_nothing="scanner_record",
            )
            for app_id, effects in by_app.items():
                app = self.apps.get(app_id)
                if app is None:
                    raise RuntimeError(f"journal entries of mini-app {app_id!r}, which is not enabled")
                await app.apply(effects)
        for key, citizen in pairs.items():
            app_id, _, openid = key.partition("/")
            self.pairwise.remember(app_id, openid, citizen)

    async def drain_once(self) -> int:
        """Apply the oldest batch (old enough, in inline mode); the number of entries applied."""
        now_ms = int(time.time() * 1000)
        rows = [
            (i, raw)
            for i, raw in await self.store.stream_read(STREAM, self.batch)
            if _age_ms(i, now_ms) >= self.min_age_ms
        ]
        if not rows:
            return 0
        entries = [_decoder.decode(raw) for _, raw in rows]
        try:
            await self._apply(entries)
        except Exception:
            log.exception("a journal batch failed; applying its entries one by one")
            return await self._one_by_one(rows, entries)
        await self.store.stream_delete(STREAM, *(i for i, _ in rows))
        return len(rows)

    async def _one_by_one(self, rows: list[tuple[str, bytes]], entries: list[Entry]) -> int:
        done = 0
        for (entry_id, raw), entry in zip(rows, entries, strict=True):
            try:
                await self._apply([entry])
            except Exception:
                failures = self._failures[entry_id] = self._failures.get(entry_id, 0) + 1
                log.exception("a journal entry failed", extra={"entry": entry_id, "failures": failures})
                if failures < MAX_FAILURES:
                    continue
                await self.store.set(DEAD + entry_id, raw)  # kept for an operator, out of the way
                log.error("a journal entry was set aside after repeated failures", extra={"entry": entry_id})
            self._failures.pop(entry_id, None)
            await self.store.stream_delete(STREAM, entry_id)
            done += 1
        return done

    async def drain(self) -> int:
        """Apply everything the journal holds now (any age); the number applied. For shutdown, tests and
        operators: it takes no lease, so call it where no other worker drains at the same time, or
        accept that an entry may be applied twice (which changes nothing)."""
        saved, self.min_age_ms = self.min_age_ms, 0
        total = 0
        try:
            while n := await self.drain_once():
                total += n
        finally:
            self.min_age_ms = saved
        return total

    async def pending(self) -> int:
        return await self.store.stream_length(STREAM)

    # ---- the drainer -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="gate-journal")

    async def stop(self) -> None:
        """At shutdown, before the pool closes: stop draining; the lease holder writes what is left."""
        self._stopping = True
        if self._task is not None:
            # a cancellation that lands inside the Redis client may come out as its connection error
            # (and be taken for a failure): the flag ends the loop either way
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                self._task.result()
            self._task = None
        try:
            if await self.store.expire_if_equal(LEASE, self._me, LEASE_TTL) or self.inline:
                await self.drain()
            await self.store.delete_if_equal(LEASE, self._me)
        except Exception:  # the next worker to take the lease applies what is left
            log.exception("the journal could not be drained at shutdown")

    async def _leased(self) -> bool:
        return await self.store.expire_if_equal(LEASE, self._me, LEASE_TTL) or await self.store.set_if_absent(
            LEASE, self._me, LEASE_TTL
        )

    async def _run(self) -> None:
        renewed = 0.0
        holder = False
        while not self._stopping:
            try:
                if time.monotonic() - renewed > LEASE_TTL / 3:
                    holder = await self._leased()
                    renewed = time.monotonic()
                if holder and await self.drain_once() >= self.batch:
                    continue  # a full batch: more may be waiting, go on at once
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the journal drainer failed; trying again")
                holder = False
                await asyncio.sleep(1.0)
            # a batch every interval: under load one transaction carries many decisions
            await asyncio.sleep(self.interval if holder else LEASE_TTL / 3)


def state_key(app_id: str, citizen_template: str = "{c}") -> str:
    """Where a rider's state at a mini-app is kept (``{c}``: the citizen id, filled in by the store)."""
    return f"gate:state:{app_id}:{citizen_template}"


def answer_key(scanner_record: str) -> str:
    """Where a fast decision's answer is kept for retries of its record."""
    return f"gate:answer:{scanner_record}"

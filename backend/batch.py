"""Rows written in batches, off a request's path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from piccolo.columns import Column
from piccolo.table import Table

from backend import db
from backend.clock import Clock

log = logging.getLogger("shengshitong.batch")


class BatchWriter:
    """Writes rows in batches, off the request's path: one multi-row insert every ``interval`` seconds
    costs far less than a transaction per request. Rows still queued are written at shutdown; a crash
    loses at most one interval of them, so only what may be lost is written this way (scan history:
    never a decision, which is stored with the mini-app's writes; code mappings: a copy of what the store
    holds). ``stamp`` names a column set to the time of writing; ``purge`` deletes expired rows now and
    then."""

    def __init__(
        self,
        table: type[Table],
        clock: Clock,
        *,
        unique: str,
        stamp: str | None = None,
        purge: Column | None = None,
        interval: float = 0.2,
        max_batch: int = 500,
    ) -> None:
        self.table = table
        self.clock = clock
        self.unique = unique
        self.stamp = stamp
        self.purge_by = purge
        self.interval = interval
        self.max_batch = max_batch
        self._name = table._meta.tablename
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=50_000)
        self._task: asyncio.Task[None] | None = None

    def add(self, row: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            log.error("write queue full: a row was dropped", extra={"table": self._name})

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=50_000)  # bound to the running loop
        self._task = asyncio.create_task(self._run(), name=f"batch-writer:{self._name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.interval)
            rounds += 1
            try:
                await self.flush()
                if self.purge_by is not None and rounds % 3000 == 0:  # every ten minutes or so
                    await self.purge()
            except Exception:  # keep writing; the failed batch is logged and retried next time
                log.exception("batch write failed", extra={"table": self._name})

    async def flush(self) -> int:
        written = 0
        while not self._queue.empty():
            batch = [self._queue.get_nowait() for _ in range(min(self.max_batch, self._queue.qsize()))]
            now = self.clock.now()
            rows = [{**r, self.stamp: now} for r in batch] if self.stamp else batch
            try:
                await db.bulk_insert(self.table, rows, on_conflict_do_nothing=self.unique)
            except Exception:
                for r in batch:  # put them back for the next round
                    self.add(r)
                raise
            written += len(rows)
        return written

    async def purge(self) -> None:
        assert self.purge_by is not None
        await self.table.delete().where(self.purge_by < self.clock.now()).run()

"""Durable background attempts: on the Redis job queue (saq) when Redis is configured, in-process in the
embedded default.

A job names one attempt of something recorded in the database (a delivery and its attempt number), so
its key makes it run once however many workers enqueue it; what it does is claimed in the database
first, so a job run twice after a crash does no harm. The rows, not the queue, are the truth: a lost
job is enqueued again by the next round that finds its row still due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from saq import Queue, Worker

log = logging.getLogger("shengshitong.jobs")
Job = Callable[..., Awaitable[Any]]


class Jobs:
    def __init__(self, redis_url: str, name: str, *, concurrency: int = 10) -> None:
        self._redis_url = redis_url
        self._name = name  # carries the deployment's store prefix (deployments may share one Redis)
        self._concurrency = concurrency
        self._functions: dict[str, Job] = {}
        self._queue: Any = None
        self._worker: Any = None
        self._worker_task: asyncio.Task[None] | None = None

    def register(self, name: str, function: Job) -> None:
        self._functions[name] = function

    @property
    def name(self) -> str:
        return self._name

    @property
    def queue_name(self) -> str | None:
        """The name of the Redis queue this worker is connected to (None: in-process)."""
        return None if self._queue is None else str(self._queue.name)

    async def ready(self) -> bool:
        """Connect the queue and start its worker; a Redis that is down is tried again next round."""
        if not self._redis_url or self._queue is not None:
            return True
        queue = Queue.from_url(self._redis_url, name=self._name)
        try:
            await queue.connect()
            await queue.redis.ping()  # type: ignore[attr-defined]
        except Exception as exc:
            log.warning("job queue %s unreachable; will retry: %s", self._name, type(exc).__name__)
            with contextlib.suppress(Exception):
                await queue.disconnect()
            return False
        self._queue = queue

        def wrap(function: Job) -> Job:
            async def run(ctx: dict[str, Any], **kwargs: Any) -> Any:
                return await function(**kwargs)

            return run

        self._worker = Worker(
            queue,
            functions=[(n, wrap(f)) for n, f in self._functions.items()],
            concurrency=self._concurrency,
        )
        # saq's worker takes SIGINT/SIGTERM for itself when standalone; inside the app server the signals
        # are uvicorn's (which stops this worker through the app's shutdown)
        self._worker.SIGNALS = []
        self._worker_task = asyncio.create_task(self._worker.start(), name=f"jobs-{self._name}")
        return True

    async def enqueue(self, function: str, *, key: str, timeout: int = 30, **kwargs: Any) -> None:  # noqa: ASYNC109 - the job's own limit, kept by saq
        """Run ``function(**kwargs)`` once for ``key``: as a job on Redis, or now in this process."""
        if self._queue is None:
            await self._functions[function](**kwargs)
            return
        await self._queue.enqueue(function, key=key, timeout=timeout, retries=1, **kwargs)

    async def drain(self, within: float = 10.0) -> None:
        """Wait until the queue has run every job it holds (tests, graceful shutdown)."""
        if self._queue is None:
            return
        deadline = time.monotonic() + within
        while await self._queue.count("incomplete") and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        # bounded: a Redis that went away must not hold the server's shutdown
        if self._worker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._worker.stop(), 5)
        if self._worker_task is not None:
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._worker_task, 5)
        if self._queue is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.disconnect(), 5)
        self._queue = self._worker = self._worker_task = None

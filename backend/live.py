"""The live channel: events to a citizen's open apps (the wallet), from any worker to any worker.

A service says ``await live.publish([("citizen:<id>", "code", {...})])``; an open app listens on
``GET /api/v1/me/events`` (server-sent events), whichever worker it reached. Across workers the events
travel through the store's publish/subscribe (Redis); each worker holds one subscription however many
apps it serves, and subscribes to a citizen's topic only while an app of that citizen is connected to it.

Events are hints ("your code changed: fetch it"), never the only copy of anything: a listener that was
not connected, or whose queue was full, misses them and loses nothing it cannot fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from backend.store import Store
from backend.store.base import Subscriber

log = logging.getLogger("shengshitong.live")
QUEUE_SIZE = 32


class Event:
    __slots__ = ("data", "name")

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        self.name = name
        self.data = data

    def sse(self) -> bytes:
        """The event in the text/event-stream format."""
        return f"event: {self.name}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


class Live:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._queues: dict[str, set[asyncio.Queue[Event]]] = {}
        self._subscriber: Subscriber | None = None
        self._lock = asyncio.Lock()

    @staticmethod
    def _channel(topic: str) -> str:
        return "live:" + topic

    async def publish(self, events: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Send each ``(topic, event name, data)``; a store that is down loses them (they are hints)."""
        messages = [
            (self._channel(topic), json.dumps([name, data], separators=(",", ":")).encode())
            for topic, name, data in events
        ]
        try:
            await self._store.publish(messages)
        except Exception as exc:
            log.warning("live events not sent (%d): %s", len(messages), exc)

    def _deliver(self, channel: str, data: bytes) -> None:
        queues = self._queues.get(channel.removeprefix("live:"))
        if not queues:
            return
        try:
            name, payload = json.loads(data)
        except ValueError:
            return
        event = Event(str(name), payload if isinstance(payload, dict) else {})
        for queue in queues:
            if queue.full():  # a slow reader keeps the newest events
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def follow(self, topic: str) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue that receives the topic's events while the block runs."""
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        async with self._lock:
            if self._subscriber is None:
                self._subscriber = self._store.subscriber(self._deliver)
            first = topic not in self._queues
            self._queues.setdefault(topic, set()).add(queue)
            if first:
                try:
                    await self._subscriber.add(self._channel(topic))
                except Exception:
                    self._drop(topic, queue)
                    raise
        try:
            yield queue
        finally:
            async with self._lock:
                if self._drop(topic, queue) and self._subscriber is not None:
                    await self._subscriber.remove(self._channel(topic))

    def _drop(self, topic: str, queue: asyncio.Queue[Event]) -> bool:
        """Forget a queue; True when it was the topic's last."""
        queues = self._queues.get(topic)
        if queues is None:
            return False
        queues.discard(queue)
        if queues:
            return False
        del self._queues[topic]
        return True

    async def close(self) -> None:
        if self._subscriber is not None:
            await self._subscriber.close()
            self._subscriber = None

"""The dashboard's channel backend on Redis, made to outlive Redis outages.

Litestar's pub/sub backend subscribes at start-up and lets an error end its reader and writer tasks:
with Redis down at start the app would not start, and after a blip no tick would reach a viewer again
(and ticks would pile up in the publish queue). Here a failed subscribe or read is retried every
second and a failed publish drops that tick; viewers still get a frame every push interval meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.exceptions import RedisError

log = logging.getLogger("shengshitong.dashboard")
RETRY = 1.0


class ResilientRedisPubSub(RedisChannelsPubSubBackend):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wanted: set[str] = set()
        self._subscribed = False

    async def subscribe(self, channels: Iterable[str]) -> None:
        self._wanted.update(channels)
        try:
            await super().subscribe(self._wanted)
            self._subscribed = True
        except (RedisError, OSError) as exc:
            self._subscribed = False
            log.warning("dashboard channel: subscribe failed, retrying", extra={"error": str(exc)})

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        try:
            await super().publish(data, channels)
        except (RedisError, OSError) as exc:
            log.warning("dashboard channel: tick not published", extra={"error": str(exc)})

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        while True:
            if not self._subscribed:
                if self._wanted:
                    await self.subscribe(self._wanted)
                if not self._subscribed:
                    await asyncio.sleep(RETRY)
                    continue
            try:
                async for event in super().stream_events():
                    yield event
            except (RedisError, OSError) as exc:
                self._subscribed = False
                log.warning("dashboard channel: connection lost, resubscribing", extra={"error": str(exc)})
                await asyncio.sleep(RETRY)

    async def on_shutdown(self) -> None:
        try:
            await super().on_shutdown()
        finally:
            await self._redis.aclose(close_connection_pool=True)  # the client is this backend's own

"""Redis store (redis-py asyncio). Shared by every worker; the production backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from backend.store.base import Store, StoreUnavailable, Subscriber
from backend.store.resp import PipelinedRedis, RespError

# Lua scripts run atomically on the server.
# claim: KEYS[1] the key, KEYS[2..] keys to read; ARGV value, ttl ms, retry prefix
# the claim itself, shared by both scripts: the key to claim, its value, TTL ms and retry prefix
_CLAIM_STEP = """
local function claim(key, value, ttl, prefix)
  local before = redis.call('GET', key)
  local outcome = 'held'
  if not before then
    outcome = 'claimed'
  elseif prefix ~= '' and string.sub(before, 1, string.len(prefix)) == prefix then
    outcome = 'retry'
  end
  if outcome ~= 'held' then
    redis.call('SET', key, value, 'PX', ttl)
  end
  return outcome, before
end
"""
_CLAIM = (
    _CLAIM_STEP
    + """
local outcome, before = claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
local reads = {}
if #KEYS > 1 then
  reads = redis.call('MGET', unpack(KEYS, 2))
end
return {outcome, before, reads}
"""
)
# claim_through: KEYS[1] the lookup, KEYS[2] the key to claim; ARGV value, ttl ms, retry prefix, the
# store's prefix, then the keys to read with {field} of the lookup's JSON object in them. The keys read
# are built here from the lookup, so this runs on one Redis server (no cluster slots), as everything here.
_CLAIM_THROUGH = (
    _CLAIM_STEP
    + """
local found = redis.call('GET', KEYS[1])
if not found then
  return {'unknown', false, {}}
end
local fields = cjson.decode(found)
local outcome = claim(KEYS[2], ARGV[1], ARGV[2], ARGV[3])
local reads = {}
for i = 5, #ARGV do
  local key = string.gsub(ARGV[i], '{(%w+)}', function(name) return tostring(fields[name] or '') end)
  reads[i - 4] = redis.call('GET', ARGV[4] .. key)
end
return {outcome, found, reads}
"""
)
# commit: KEYS state, once, stream, counter; ARGV expected, expected given (1/0), state, state given
# (1/0), state ttl ms, once value, once ttl ms, entry, amount to add to the counter
_COMMIT = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 'decided'
end
local current = redis.call('GET', KEYS[1])
if ARGV[2] == '1' then
  if current ~= ARGV[1] then return 'changed' end
elseif current then
  return 'changed'
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[5])
end
redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[7])
if ARGV[9] ~= '0' and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('INCRBY', KEYS[4], ARGV[9])
end
return redis.call('XADD', KEYS[3], '*', 'e', ARGV[8])
"""
_EXPIRE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Many keys or channels in one command (a bulk change touches thousands): ARGV[1] is the TTL in ms
# (SET) and the values follow in the keys' order.
_SET_EACH = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
end
return #KEYS
"""
_PUBLISH_EACH = """
for i, channel in ipairs(KEYS) do
  redis.call('PUBLISH', channel, ARGV[i])
end
return #KEYS
"""

_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisStore(Store):
    kind = "redis"

    def __init__(self, url: str, prefix: str = "", timeout: float = 2.0, max_connections: int = 50) -> None:
        self._url = url
        self._max_connections = max_connections
        self._prefix = prefix
        self._timeout = timeout
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        # the gate's hot commands go through one pipelined connection (backend/store/resp.py)
        self._fast = PipelinedRedis(url, timeout=timeout)

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            # A blocking pool: a burst of requests waits for a free connection instead of failing.
            pool = aioredis.BlockingConnectionPool.from_url(
                self._url,
                max_connections=self._max_connections,
                timeout=self._timeout,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                health_check_interval=30,
            )
            self._client = aioredis.Redis(connection_pool=pool)
        return self._client

    def _script(self, name: str, source: str) -> Any:
        """A registered Lua script (EVALSHA, loaded again by redis-py if the server forgot it)."""
        if name not in self._scripts:
            self._scripts[name] = self.client.register_script(source)
        return self._scripts[name]

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._fast.execute("GET", self._k(key))
        except RespError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return None if value is None else bytes(value)

    async def mget(self, *keys: str) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = await self.client.mget([self._k(k) for k in keys])
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def set(self, key: str, value: bytes | str, ttl: float | None = None) -> None:
        try:
            if ttl is None:
                await self._fast.execute("SET", self._k(key), value)
            else:
                await self._fast.execute("SET", self._k(key), value, "PX", _ms(ttl))
        except RespError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def set_if_absent(self, key: str, value: bytes | str, ttl: float) -> bool:
        try:
            return bool(await self.client.set(self._k(key), value, nx=True, px=_ms(ttl)))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def claim(
        self, key: str, value: str, ttl: float, *, read: tuple[str, ...] = (), retry_prefix: str = ""
    ) -> tuple[str, bytes | None, list[bytes | None]]:
        keys = [self._k(key), *(self._k(r) for r in read)]
        try:
            outcome, before, reads = await self._script("claim", _CLAIM)(
                keys=keys, args=[value, _ms(ttl), retry_prefix]
            )
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return (
            outcome.decode() if isinstance(outcome, bytes) else str(outcome),
            before or None,
            [v or None for v in reads] + [None] * (len(read) - len(reads)),
        )

    async def claim_through(
        self, lookup: str, key: str, value: str, ttl: float, *, read: tuple[str, ...], retry_prefix: str
    ) -> tuple[str, bytes | None, list[bytes | None]]:
        try:
            outcome, found, reads = await self._fast.script(
                _CLAIM_THROUGH,
                keys=[self._k(lookup), self._k(key)],
                args=[value, _ms(ttl), retry_prefix, self._prefix, *read],
            )
        except RespError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return (
            outcome.decode() if isinstance(outcome, bytes) else str(outcome),
            found or None,
            [v or None for v in reads] + [None] * (len(read) - len(reads)),
        )

    async def commit(
        self,
        *,
        state_key: str,
        expected: bytes | None,
        state: bytes | None,
        state_ttl: float,
        once_key: str,
        once_value: bytes,
        once_ttl: float,
        stream: str,
        entry: bytes,
        add_key: str = "",
        add: int = 0,
    ) -> str:
        try:
            out = await self._fast.script(
                _COMMIT,
                keys=[self._k(state_key), self._k(once_key), self._k(stream), self._k(add_key)],
                args=[
                    expected or b"",
                    "0" if expected is None else "1",
                    state or b"",
                    "0" if state is None else "1",
                    _ms(state_ttl),
                    once_value,
                    _ms(once_ttl),
                    entry,
                    str(add),
                ],
            )
        except RespError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return out.decode() if isinstance(out, bytes) else str(out)

    async def stream_read(self, stream: str, count: int) -> list[tuple[str, bytes]]:
        try:
            rows = await self.client.xrange(self._k(stream), count=count)
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        out: list[tuple[str, bytes]] = []
        for entry_id, fields in rows or []:
            value = (fields or {})[b"e"]
            out.append((str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id), bytes(value)))  # type: ignore[arg-type]
        return out

    async def stream_delete(self, stream: str, *ids: str) -> int:
        if not ids:
            return 0
        try:
            return int(await self.client.xdel(self._k(stream), *ids))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def stream_length(self, stream: str) -> int:
        try:
            return int(await self.client.xlen(self._k(stream)))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def expire_if_equal(self, key: str, expected: bytes | str, ttl: float) -> bool:
        try:
            done = await self._script("expire_if_equal", _EXPIRE_IF_EQUAL)(
                keys=[self._k(key)], args=[expected, _ms(ttl)]
            )
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return bool(done)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        try:
            return int(await self.client.delete(*(self._k(k) for k in keys)))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def delete_if_equal(self, key: str, expected: bytes | str) -> bool:
        try:
            done = await self._script("delete_if_equal", _DELETE_IF_EQUAL)(
                keys=[self._k(key)], args=[expected]
            )
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return bool(done)

    async def set_many(self, items: dict[str, bytes | str], ttl: dict[str, float | None]) -> None:
        if not items:
            return
        ttls = {ttl.get(k) for k in items}
        if len(ttls) == 1 and (same := ttls.pop()) is not None:  # one TTL for all: one command
            try:
                await self._script("set_each", _SET_EACH)(
                    keys=[self._k(k) for k in items], args=[_ms(same), *items.values()]
                )
            except RedisError as exc:
                raise StoreUnavailable(str(exc)) from exc
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    t = ttl.get(key)
                    pipe.set(self._k(key), value, px=_ms(t) if t is not None else None)
                await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        k = self._k(key)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incrby(k, amount)
                pipe.pexpire(k, _ms(ttl), nx=True)
                value, _ = await pipe.execute()
            return int(value)
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def add_counts(self, key: str, counts: dict[str, int], ttl: float) -> None:
        if not counts:
            return
        k = self._k(key)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for name, n in counts.items():
                    pipe.hincrby(k, name, n)
                pipe.pexpire(k, _ms(ttl), nx=True)
                await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def get_counts(self, *keys: str) -> list[dict[str, int]]:
        if not keys:
            return []
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(self._k(key))
                rows = await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [{(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in row.items()} for row in rows]

    async def ttl(self, key: str) -> float | None:
        try:
            ms = await self.client.pttl(self._k(key))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return None if ms < 0 else ms / 1000

    async def publish(self, messages: list[tuple[str, bytes]]) -> None:
        if not messages:
            return
        try:
            await self._script("publish_each", _PUBLISH_EACH)(
                keys=[self._k(c) for c, _ in messages], args=[d for _, d in messages]
            )
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def subscriber(self, deliver: Callable[[str, bytes], None]) -> Subscriber:
        return _RedisSubscriber(self.client, self._prefix, deliver)

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self._fast.close()
        if self._client is not None:
            await self._client.aclose(close_connection_pool=True)
            self._client = None
            self._scripts.clear()

    async def delete_prefix(self) -> None:
        """Remove every key under this store's prefix (tests and tear-down)."""
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=self._prefix + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await self.client.delete(*batch)
                batch.clear()
        if batch:
            await self.client.delete(*batch)


class _RedisSubscriber(Subscriber):
    """One pub/sub connection per worker, whatever the number of channels: a reader task hands each
    message to ``deliver``. After a lost connection redis-py connects again and subscribes again to the
    channels it holds; messages sent in between are lost (listeners treat them as hints)."""

    def __init__(self, client: aioredis.Redis, prefix: str, deliver: Callable[[str, bytes], None]) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._prefix = prefix
        self._deliver = deliver
        self._reader: asyncio.Task[None] | None = None
        self._log = logging.getLogger("shengshitong.store")

    async def add(self, channel: str) -> None:
        try:
            await self._pubsub.subscribe(self._prefix + channel)
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="store-subscriber")

    async def remove(self, channel: str) -> None:
        with contextlib.suppress(RedisError):
            await self._pubsub.unsubscribe(self._prefix + channel)

    async def _read(self) -> None:
        cut = len(self._prefix)
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                self._log.warning("pub/sub connection lost, reconnecting: %s", exc)
                await asyncio.sleep(0.5)
                continue
            except RuntimeError:  # every channel was removed: nothing to read until one is added
                return
            if message and message.get("type") == "message":
                channel = message["channel"]
                name = (channel.decode() if isinstance(channel, bytes) else str(channel))[cut:]
                try:
                    self._deliver(name, message["data"])
                except Exception:  # a listener's failure must not stop the others' messages
                    self._log.exception("pub/sub listener failed")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))

"""In-process store for the embedded default. Correct only inside ONE process: the server refuses to
start several workers with it. All operations run on the event loop without awaiting in between, so
each one is atomic with respect to other tasks."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable

from backend.store.base import Store, Subscriber


class MemoryStore(Store):
    kind = "memory"

    def __init__(self, prefix: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self._prefix = prefix
        self._clock = clock
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._streams: dict[str, dict[str, bytes]] = {}
        self._last_id = (0, 0)
        self._ops = 0
        self._listeners: dict[str, set[_MemorySubscriber]] = {}

    def _k(self, key: str) -> str:
        return self._prefix + key

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= self._clock():
            del self._data[key]
            return None
        return item

    def _sweep(self) -> None:
        # Drop expired keys now and then so memory does not grow with dead entries.
        self._ops += 1
        if self._ops % 1024 == 0:
            now = self._clock()
            for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
                del self._data[key]

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    async def publish(self, messages: list[tuple[str, bytes]]) -> None:
        for channel, data in messages:
            for listener in list(self._listeners.get(channel, ())):
                listener.deliver(channel, data)

    def subscriber(self, deliver: Callable[[str, bytes], None]) -> Subscriber:
        return _MemorySubscriber(self._listeners, deliver)

    async def get(self, key: str) -> bytes | None:
        item = self._live(self._k(key))
        return None if item is None else item[0]

    async def set(self, key: str, value: bytes | str, ttl: float | None = None) -> None:
        self._sweep()
        self._data[self._k(key)] = (_b(value), self._expiry(ttl))

    async def set_if_absent(self, key: str, value: bytes | str, ttl: float) -> bool:
        self._sweep()
        k = self._k(key)
        if self._live(k) is not None:
            return False
        self._data[k] = (_b(value), self._expiry(ttl))
        return True

    async def delete(self, *keys: str) -> int:
        n = 0
        for key in keys:
            if self._live(self._k(key)) is not None:
                del self._data[self._k(key)]
                n += 1
        return n

    async def claim(
        self, key: str, value: str, ttl: float, *, read: tuple[str, ...] = (), retry_prefix: str = ""
    ) -> tuple[str, bytes | None, list[bytes | None]]:
        self._sweep()
        k = self._k(key)
        item = self._live(k)
        before = None if item is None else item[0]
        if before is None:
            outcome = "claimed"
        elif retry_prefix and before.startswith(retry_prefix.encode()):
            outcome = "retry"
        else:
            outcome = "held"
        if outcome != "held":
            self._data[k] = (_b(value), self._expiry(ttl))
        return outcome, before, [await self.get(r) for r in read]

    async def claim_through(
        self, lookup: str, key: str, value: str, ttl: float, *, read: tuple[str, ...], retry_prefix: str
    ) -> tuple[str, bytes | None, list[bytes | None]]:
        found = await self.get(lookup)
        if found is None:
            return "unknown", None, [None] * len(read)
        fields = json.loads(found)
        outcome, _, values = await self.claim(
            key,
            value,
            ttl,
            read=tuple(_FIELD.sub(lambda m: str(fields.get(m.group(1), "")), r) for r in read),
            retry_prefix=retry_prefix,
        )
        return outcome, found, values

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
        self._sweep()
        if self._live(self._k(once_key)) is not None:
            return "decided"
        current = self._live(self._k(state_key))
        if (None if current is None else current[0]) != expected:
            return "changed"
        if state is not None:
            self._data[self._k(state_key)] = (state, self._expiry(state_ttl))
        self._data[self._k(once_key)] = (once_value, self._expiry(once_ttl))
        if add and (counter := self._live(self._k(add_key))) is not None:
            self._data[self._k(add_key)] = (str(int(counter[0]) + add).encode(), counter[1])
        ms = int(time.time() * 1000)
        self._last_id = (ms, 0) if ms > self._last_id[0] else (self._last_id[0], self._last_id[1] + 1)
        entry_id = f"{self._last_id[0]}-{self._last_id[1]}"
        self._streams.setdefault(self._k(stream), {})[entry_id] = entry
        return entry_id

    async def stream_read(self, stream: str, count: int) -> list[tuple[str, bytes]]:
        entries = self._streams.get(self._k(stream), {})
        return list(itertools.islice(entries.items(), count))

    async def stream_delete(self, stream: str, *ids: str) -> int:
        entries = self._streams.get(self._k(stream), {})
        return sum(entries.pop(i, None) is not None for i in ids)

    async def stream_length(self, stream: str) -> int:
        return len(self._streams.get(self._k(stream), {}))

    async def expire_if_equal(self, key: str, expected: bytes | str, ttl: float) -> bool:
        item = self._live(self._k(key))
        if item is None or item[0] != _b(expected):
            return False
        self._data[self._k(key)] = (item[0], self._expiry(ttl))
        return True

    async def delete_if_equal(self, key: str, expected: bytes | str) -> bool:
        item = self._live(self._k(key))
        if item is None or item[0] != _b(expected):
            return False
        del self._data[self._k(key)]
        return True

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        self._sweep()
        k = self._k(key)
        item = self._live(k)
        if item is None:
            self._data[k] = (str(amount).encode(), self._expiry(ttl))
            return amount
        value = int(item[0]) + amount
        self._data[k] = (str(value).encode(), item[1])
        return value

    async def add_counts(self, key: str, counts: dict[str, int], ttl: float) -> None:
        self._sweep()
        k = self._k(key)
        item = self._live(k)
        current: dict[str, int] = json.loads(item[0]) if item else {}
        for name, n in counts.items():
            current[name] = current.get(name, 0) + n
        self._data[k] = (json.dumps(current).encode(), item[1] if item else self._expiry(ttl))

    async def get_counts(self, *keys: str) -> list[dict[str, int]]:
        out = []
        for key in keys:
            item = self._live(self._k(key))
            out.append(json.loads(item[0]) if item else {})
        return out

    async def ttl(self, key: str) -> float | None:
        item = self._live(self._k(key))
        if item is None or item[1] is None:
            return None
        return max(0.0, item[1] - self._clock())

    async def ping(self) -> None:
        return None


_FIELD = re.compile(r"\{(\w+)\}")


def _b(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


class _MemorySubscriber(Subscriber):
    def __init__(
        self, listeners: dict[str, set[_MemorySubscriber]], deliver: Callable[[str, bytes], None]
    ) -> None:
        self._listeners = listeners
        self.deliver = deliver
        self._channels: set[str] = set()

    async def add(self, channel: str) -> None:
        self._listeners.setdefault(channel, set()).add(self)
        self._channels.add(channel)

    async def remove(self, channel: str) -> None:
        self._channels.discard(channel)
        listeners = self._listeners.get(channel)
        if listeners is not None:
            listeners.discard(self)
            if not listeners:
                del self._listeners[channel]

    async def close(self) -> None:
        for channel in list(self._channels):
            await self.remove(channel)

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable


class StoreUnavailable(Exception):
    """The store did not answer (Redis down, connection refused, timeout)."""


class Store(ABC):
    """What the rest of the code may ask of the shared store. TTLs are in seconds (float allowed)."""

    kind: str

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    async def mget(self, *keys: str) -> list[bytes | None]:
        """Several values in one round trip (None for missing keys)."""
        return [await self.get(k) for k in keys]

    @abstractmethod
    async def set(self, key: str, value: bytes | str, ttl: float | None = None) -> None: ...

    @abstractmethod
    async def set_if_absent(self, key: str, value: bytes | str, ttl: float) -> bool:
        """Atomically store ``value`` unless the key exists; True when this call stored it."""

    @abstractmethod
    async def claim(
        self, key: str, value: str, ttl: float, *, read: tuple[str, ...] = (), retry_prefix: str = ""
    ) -> tuple[str, bytes | None, list[bytes | None]]:
        """Claim ``key`` for ``value`` and read other keys, atomically and in one round trip:
        (outcome, the value held before, values of ``read``). The outcome is ``claimed`` (the key was
        free), ``retry`` (it held a value starting with ``retry_prefix`` — an earlier attempt of the same
        thing — and now holds ``value`` instead) or ``held`` (someone else holds it; nothing changed).

        The scan path uses it to claim a code's single use and read the account's markers together."""

    @abstractmethod
    async def claim_through(
        self, lookup: str, key: str, value: str, ttl: float, *, read: tuple[str, ...], retry_prefix: str
    ) -> tuple[str, bytes | None, list[bytes | None]]:
        """:meth:`claim`, after looking up ``lookup`` (a JSON object), all in one round trip: when the
        lookup is missing nothing is claimed and the outcome is ``unknown``; otherwise ``{name}`` in each
        ``read`` key is replaced by the object's field ``name`` before it is read. Returns (outcome, the
        lookup's value, values of ``read``).

        The scan path: the code's holder (citizen, session) is looked up by the code's id, its single
        use claimed, and the holder's account markers and state at the mini-app read, together."""

    @abstractmethod
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
        """Commit a decision atomically, in one round trip: unless ``once_key`` exists (``"decided"``:
        this thing was decided already) or ``state_key`` no longer holds ``expected`` (None: absent;
        ``"changed"``: someone changed it since it was read), store ``state`` under ``state_key`` (None:
        leave it), ``once_value`` under ``once_key``, add ``add`` to the counter ``add_key`` if it exists
        (a count that is not kept is counted afresh by its owner), and append ``entry`` to the journal
        ``stream``.
        Returns the entry's id in the stream, or ``"decided"`` / ``"changed"`` (then nothing changed)."""

    @abstractmethod
    async def stream_read(self, stream: str, count: int) -> list[tuple[str, bytes]]:
        """The oldest ``count`` entries of a journal stream: (id, entry). Ids are ``"<ms>-<seq>"``,
        ordered as appended."""

    @abstractmethod
    async def stream_delete(self, stream: str, *ids: str) -> int:
        """Remove entries from a journal stream (applied); the number removed."""

    @abstractmethod
    async def stream_length(self, stream: str) -> int:
        """Entries in a journal stream."""

    @abstractmethod
    async def expire_if_equal(self, key: str, expected: bytes | str, ttl: float) -> bool:
        """Atomically set a new TTL on ``key`` only while it holds ``expected`` (renew a lease that is
        still ours); True when it did."""

    @abstractmethod
    async def delete(self, *keys: str) -> int: ...

    @abstractmethod
    async def delete_if_equal(self, key: str, expected: bytes | str) -> bool:
        """Atomically delete ``key`` only while it holds ``expected`` (release a claim that is still
        ours, never one another attempt has taken over); True when it did."""

    async def set_many(self, items: dict[str, bytes | str], ttl: dict[str, float | None]) -> None:
        """Several keys at once, each with its own TTL (None: no expiry); one round trip where possible."""
        for key, value in items.items():
            await self.set(key, value, ttl.get(key))

    @abstractmethod
    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        """Add ``amount`` to a counter; the TTL starts when the counter is created (fixed window)."""

    @abstractmethod
    async def add_counts(self, key: str, counts: dict[str, int], ttl: float) -> None:
        """Add to several named counters kept together under ``key`` (a hash); the TTL starts when the
        key is created."""

    @abstractmethod
    async def get_counts(self, *keys: str) -> list[dict[str, int]]:
        """The counters under each key ({} for a missing key), in one round trip."""

    @abstractmethod
    async def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``; None when it does not exist or never expires."""

    @abstractmethod
    async def publish(self, messages: list[tuple[str, bytes]]) -> None:
        """Send each ``(channel, data)`` to whoever listens on that channel now, in any worker (pub/sub:
        nothing is kept for a listener that comes later)."""

    @abstractmethod
    def subscriber(self, deliver: Callable[[str, bytes], None]) -> Subscriber:
        """A subscription of this worker: ``deliver(channel, data)`` is called for messages on the
        channels it has added."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections (called at app start-up)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (called at app shutdown)."""


class Subscriber(ABC):
    """One worker's listening end of :meth:`Store.publish` (see :meth:`Store.subscriber`)."""

    @abstractmethod
    async def add(self, channel: str) -> None: ...

    @abstractmethod
    async def remove(self, channel: str) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

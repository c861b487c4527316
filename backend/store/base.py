from __future__ import annotations

from abc import ABC, abstractmethod


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

    async def claim(
        self, key: str, value: bytes | str, ttl: float, *, read: tuple[str, ...] = ()
    ) -> tuple[bool, bytes | None, list[bytes | None]]:
        """Set-if-absent plus reads, in one round trip: (claimed, the key's value now, values of ``read``).

        The scan path uses it to claim a code's single use and read the account's revocation markers
        together."""
        claimed = await self.set_if_absent(key, value, ttl)
        holder = await self.get(key)
        return claimed, holder, await self.mget(*read) if read else []

    @abstractmethod
    async def delete(self, *keys: str) -> int: ...

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
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections (called at app start-up)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (called at app shutdown)."""

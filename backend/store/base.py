from __future__ import annotations

from abc import ABC, abstractmethod


class StoreUnavailable(Exception):
    """The store did not answer (Redis down, connection refused, timeout)."""


class Store(ABC):
    """What the rest of the code may ask of the shared store. TTLs are in seconds (float allowed)."""

    kind: str

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def set(self, key: str, value: bytes | str, ttl: float | None = None) -> None: ...

    @abstractmethod
    async def set_if_absent(self, key: str, value: bytes | str, ttl: float) -> bool:
        """Atomically store ``value`` unless the key exists; True when this call stored it."""

    @abstractmethod
    async def delete(self, *keys: str) -> int: ...

    @abstractmethod
    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        """Add ``amount`` to a counter; the TTL starts when the counter is created (fixed window)."""

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

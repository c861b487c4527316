"""The shared key-value store: Redis in production, in-process for the single-process embedded default.

Both backends implement :class:`Store` and pass the same test suite. Keys are namespaced by the
configured prefix, so several deployments (or test runs) can share one Redis.
"""

from backend.store.base import Store, StoreUnavailable
from backend.store.memory import MemoryStore
from backend.store.redis import RedisStore

__all__ = ["MemoryStore", "RedisStore", "Store", "StoreUnavailable", "create_store"]


def create_store(redis_url: str, prefix: str) -> Store:
    """Pick the backend from settings: a Redis URL means Redis, none means in-process."""
    if redis_url:
        return RedisStore(redis_url, prefix=prefix)
    return MemoryStore(prefix=prefix)

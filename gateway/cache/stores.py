"""Where cached responses live: Redis when configured, else a bounded in-process LRU with TTL."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

from gateway.db.redis_link import RedisLink, StoreUnavailable
from gateway.settings import Settings

log = logging.getLogger("gateway.cache")


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None: ...


class MemoryStore:
    """Least recently used entries go first once `max_entries` or `max_bytes` is reached;
    expired ones when read."""

    def __init__(self, max_entries: int, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self._drop(key)
        self._entries[key] = (time.monotonic() + ttl, value)
        self.bytes += len(value)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry[1])

    def __len__(self) -> int:
        return len(self._entries)


class RedisStore:
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.prefix = f"{link.prefix}cache:"

    async def get(self, key: str) -> bytes | None:
        value = await self.link.run(lambda r: r.get(self.prefix + key))
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        await self.link.run(lambda r: r.set(self.prefix + key, value, ex=ttl))


class ResponseCache:
    """Reads and writes that never fail a request: an unusable store counts as a miss."""

    def __init__(self, store: Store, default_max_age: int, max_entry_bytes: int) -> None:
        self.store = store
        self.default_max_age = default_max_age
        self.max_entry_bytes = max_entry_bytes
        # Counters for metrics.
        self.hits = 0
        self.misses = 0
        self.refreshes = 0
        self.stores = 0
        self.unavailable = 0

    @classmethod
    def from_settings(cls, settings: Settings, link: RedisLink | None) -> ResponseCache:
        store: Store = RedisStore(link) if link else MemoryStore(
            settings.cache_max_entries, settings.cache_max_bytes)
        return cls(store, settings.cache_default_max_age, settings.cache_max_entry_bytes)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.store.get(key)
        except StoreUnavailable:
            self.unavailable += 1
            value = None
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    async def set(self, key: str, value: bytes, max_age: int | None) -> None:
        if len(value) > self.max_entry_bytes:
            return
        ttl = max_age if max_age and max_age > 0 else self.default_max_age
        try:
            await self.store.set(key, value, ttl)
        except StoreUnavailable:
            self.unavailable += 1
            return
        self.stores += 1

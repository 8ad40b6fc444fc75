"""A small in-process TTL cache for key lookups, cleared at once by admin writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """Bounded; a load that started before `clear()` does not store its stale answer.

    When a reload fails with one of `stale_on` (the database is down), the expired answer is
    served for another TTL: requests keep flowing on what was last known, rather than all
    failing until the database returns.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000,
                 stale_on: tuple[type[BaseException], ...] = ()) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.stale_on = stale_on
        self._entries: dict[str, tuple[float, V]] = {}
        self._loading: dict[str, asyncio.Future[V]] = {}
        self._generation = 0

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        # One load per key at a time: the requests that find it expired together share it.
        # It runs as its own task, so a caller that goes away does not cancel the others'.
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, entry, now, load))
            self._loading[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    def _forget(self, key: str, task: asyncio.Future[V]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        if not task.cancelled():
            task.exception()  # marked retrieved: the awaiting callers re-raise it

    async def _load(self, key: str, entry: tuple[float, V] | None, now: float,
                    load: Callable[[], Awaitable[V]]) -> V:
        generation = self._generation
        try:
            value = await load()
        except self.stale_on:
            if entry is None:
                raise
            self._entries[key] = (now + self.ttl, entry[1])
            return entry[1]
        if generation == self._generation and self.ttl > 0:
            if len(self._entries) >= self.max_entries:
                self._evict(now)
            self._entries[key] = (now + self.ttl, value)
        return value

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._loading.clear()  # lookups after a write start afresh

    def expire(self) -> None:
        """Like `clear`, but the answers stay to be served stale while a reload fails."""
        self._generation += 1
        self._entries = {key: (0.0, entry[1]) for key, entry in self._entries.items()}
        self._loading.clear()

    def _evict(self, now: float) -> None:
        self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
        while len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))

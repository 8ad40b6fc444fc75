"""The in-process store is bounded and honours max_age."""

from __future__ import annotations

import time

from gateway.cache.stores import MemoryStore, ResponseCache


async def test_memory_store_evicts_least_recently_used():
    store = MemoryStore(max_entries=2)
    await store.set("a", b"1", 60)
    await store.set("b", b"2", 60)
    assert await store.get("a") == b"1"  # a is now the most recent
    await store.set("c", b"3", 60)
    assert await store.get("b") is None
    assert await store.get("a") == b"1"
    assert await store.get("c") == b"3"
    assert len(store) == 2


async def test_memory_store_expires_entries(monkeypatch):
    store = MemoryStore(max_entries=10)
    await store.set("a", b"1", 5)
    later = time.monotonic() + 6
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert await store.get("a") is None
    assert len(store) == 0


async def test_oversized_responses_are_not_kept():
    cache = ResponseCache(MemoryStore(10), default_max_age=60, max_entry_bytes=4)
    await cache.set("big", b"12345", None)
    await cache.set("small", b"1234", None)
    assert await cache.get("big") is None
    assert await cache.get("small") == b"1234"
    assert (cache.stores, cache.hits, cache.misses) == (1, 1, 1)


async def test_memory_store_is_bounded_in_bytes():
    store = MemoryStore(max_entries=100, max_bytes=10)
    await store.set("a", b"1234", 60)
    await store.set("b", b"1234", 60)
    await store.set("a", b"12345", 60)  # replacing an entry counts only its new size
    assert store.bytes == 9
    await store.set("c", b"12", 60)  # 11 bytes: the least recently used (b) goes
    assert await store.get("b") is None
    assert store.bytes == 7

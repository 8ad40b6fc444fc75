"""The resolver's TTL cache."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.ttl_cache import TTLCache


async def test_hits_until_cleared_and_stale_loads_are_dropped():
    cache: TTLCache[int] = TTLCache(ttl=60, max_entries=2)
    loads: list[str] = []

    async def load(value: int) -> int:
        loads.append(str(value))
        return value

    assert await cache.get("a", lambda: load(1)) == 1
    assert await cache.get("a", lambda: load(2)) == 1
    cache.clear()
    assert await cache.get("a", lambda: load(3)) == 3

    started = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> int:
        started.set()
        await release.wait()
        return 4

    pending = asyncio.create_task(cache.get("b", slow))
    await started.wait()
    cache.clear()  # an admin write lands while the load is in flight
    release.set()
    assert await pending == 4
    assert await cache.get("b", lambda: load(5)) == 5  # the stale 4 was not kept
    await cache.get("c", lambda: load(6))
    await cache.get("d", lambda: load(7))
    assert len(cache._entries) <= 2


async def test_expired_entries_reload_but_are_served_stale_while_the_reload_fails():
    """What a replica does when its pub/sub subscription comes back (it may have missed a
    write): every entry reloads on its next use, and the last answer stays for an outage."""
    cache: TTLCache[str] = TTLCache(ttl=60, stale_on=(ConnectionError,))

    async def value(answer: str) -> str:
        return answer

    async def down() -> str:
        raise ConnectionError("database down")

    assert await cache.get("a", lambda: value("active")) == "active"
    cache.expire()
    assert await cache.get("a", lambda: value("revoked")) == "revoked"  # reloaded
    cache.expire()
    assert await cache.get("a", down) == "revoked"  # kept, not dropped
    cache.clear()
    with pytest.raises(ConnectionError):  # a cleared entry is not served stale
        await cache.get("a", down)

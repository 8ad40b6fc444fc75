"""Both counter stores admit all-or-nothing, expire dead slots, and say when to retry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.db.redis_link import RedisLink
from gateway.limits.checks import Add, Check
from gateway.limits.counters import Counters, MemoryCounters, RedisCounters

NOW = 1_000_000.0


@pytest.fixture(params=["memory", "redis"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Counters, str]]:
    if request.param == "memory":
        yield MemoryCounters(), "mem:"
        return
    redis = request.getfixturevalue("shared_redis")
    link = RedisLink(Redis.from_url(redis.url), redis.prefix, 1.0)
    yield RedisCounters(link), redis.prefix
    await link.close()


def check(kind: str, key: str, limit: float, window: float = 0) -> Check:
    return Check(kind, key, limit, window, f"{kind} {limit}", "rate_limit_exceeded")  # type: ignore[arg-type]


async def test_refused_request_takes_nothing(counters):
    store, prefix = counters
    checks = [check("log", prefix + "rpm", 2, 60), check("slot", prefix + "conc", 1, 600)]
    assert await store.admit(checks, NOW, "m1") == (None, None)
    assert (await store.admit(checks, NOW + 1, "m2"))[0] == 1  # concurrency is full
    await store.settle("m1", [prefix + "conc"], [], NOW + 2)
    # m2 did not use up a request of the window, so m3 still fits.
    assert await store.admit(checks, NOW + 3, "m3") == (None, None)
    await store.settle("m3", [prefix + "conc"], [], NOW + 4)
    index, retry = await store.admit(checks, NOW + 5, "m4")
    assert index == 0
    assert retry == pytest.approx(55.0)  # the oldest entry (NOW) leaves the window at NOW + 60


async def test_sliding_window_admits_again_once_the_oldest_leaves(counters):
    store, prefix = counters
    checks = [check("log", prefix + "rpm", 3, 60)]
    for offset in (0, 10, 20):
        assert (await store.admit(checks, NOW + offset, f"m{offset}"))[0] is None
    assert (await store.admit(checks, NOW + 59, "late"))[0] == 0
    assert (await store.admit(checks, NOW + 61, "next"))[0] is None


async def test_slots_of_a_dead_gateway_expire(counters):
    store, prefix = counters
    checks = [check("slot", prefix + "conc", 1, 30)]
    assert (await store.admit(checks, NOW, "held-by-a-dead-process"))[0] is None
    assert (await store.admit(checks, NOW + 29, "b"))[0] == 0
    assert (await store.admit(checks, NOW + 31, "c"))[0] is None


async def test_levels_refuse_once_charges_reach_the_limit(counters):
    store, prefix = counters
    checks = [check("level", prefix + "budget", 0.05)]
    for _ in range(2):
        assert (await store.admit(checks, NOW, "m"))[0] is None
        await store.settle("m", [], [Add(prefix + "budget", 0.02, 3600)], NOW)
    assert (await store.admit(checks, NOW, "m"))[0] is None  # 0.04 spent: still below
    await store.settle("m", [], [Add(prefix + "budget", 0.02, 3600)], NOW)
    assert (await store.admit(checks, NOW, "m"))[0] == 0


async def test_peek_reads_what_each_counter_holds_without_taking_anything(counters):
    store, prefix = counters
    checks = [check("log", prefix + "rpm", 5, 60), check("slot", prefix + "conc", 3, 900),
              check("level", prefix + "spend", 1.0)]
    assert await store.peek(checks, NOW) == [0.0, 0.0, 0.0]
    for member in ("a", "b"):
        assert (await store.admit(checks, NOW, member))[0] is None
    await store.settle("a", [prefix + "conc"], [Add(prefix + "spend", 0.25, 3600)], NOW)
    assert await store.peek(checks, NOW + 1) == [2.0, 1.0, 0.25]
    assert await store.peek(checks, NOW + 1) == [2.0, 1.0, 0.25]  # peeking took nothing
    assert (await store.peek(checks, NOW + 61))[0] == 0.0  # the minute has passed

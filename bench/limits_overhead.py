"""What a request pays for limits and the cache: admit + settle, cache get + set, per call.

    .venv/bin/python bench/limits_overhead.py [--redis redis://127.0.0.1:6379/3] [-n 2000]

One API key with rpm, tpm, concurrency and a monthly budget (five checks in one Lua call),
sequential calls on one connection: the latency each request adds, not a throughput figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from redis.asyncio import Redis

from gateway.cache.stores import MemoryStore, RedisStore
from gateway.contracts.identity import Limits
from gateway.db.redis_link import RedisLink
from gateway.limits.checks import Scope, charges_for, checks_for
from gateway.limits.counters import Counters, MemoryCounters, RedisCounters

LIMITS = Limits(rpm=10**9, tpm=10**12, max_concurrent=10**6, budget_usd=10.0**9,
                budget_period="monthly")


async def limits_round(counters: Counters, prefix: str, n: int) -> list[float]:
    scope = Scope("api_key", "bench", "bench", LIMITS)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        now = time.time()
        member = uuid.uuid4().hex
        checks = checks_for(scope, prefix, now, 600)
        await counters.admit(checks, now, member)
        slots = [c.key for c in checks if c.kind == "slot"]
        await counters.settle(member, slots, charges_for(scope, prefix, now, 100, 0.001), now)
        times.append(time.perf_counter() - started)
    return times


async def cache_round(store: MemoryStore | RedisStore, n: int) -> list[float]:
    body = b"x" * 2000
    times = []
    for i in range(n):
        started = time.perf_counter()
        await store.get(f"k{i}")
        await store.set(f"k{i}", body, 60)
        times.append(time.perf_counter() - started)
    return times


def report(name: str, times: list[float]) -> None:
    times.sort()
    print(f"{name:28} median {statistics.median(times) * 1e6:8.1f} us   "
          f"p99 {times[int(len(times) * 0.99)] * 1e6:8.1f} us")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    link = RedisLink(Redis.from_url(args.redis), prefix, 1.0)
    try:
        report("limits, in process", await limits_round(MemoryCounters(), prefix, args.n))
        report("limits, redis", await limits_round(RedisCounters(link), prefix, args.n))
        report("cache get+set, in process", await cache_round(MemoryStore(10**6), args.n))
        report("cache get+set, redis", await cache_round(RedisStore(link), args.n))
    finally:
        keys = [k async for k in link.client.scan_iter(match=prefix + "*")]
        if keys:
            await link.client.delete(*keys)
        await link.close()


if __name__ == "__main__":
    asyncio.run(main())

"""What sharing circuit-breaker state through Redis costs the request path, and how soon an
opening reaches another replica.

    python -m bench.shared_circuits [--redis-url URL] [--calls 200000] [--opens 200]

1. The request path: `is_open` then `record(success)` on a target that is not failing (what
   every answered request does), on `Breakers` alone and on `Breakers` with GATEWAY_CIRCUIT_SHARED,
   alternating five times; nanoseconds per request.
2. Propagation: two replicas (two links and subscriptions on one Redis, in this process); the
   threshold's failures are recorded through one, and the clock runs until the other's
   `is_open` is true. Milliseconds, p50 and p99 over `--opens` targets.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid

import redis

from bench.harness import run_fast
from gateway.contracts.plan import Leaf
from gateway.db.redis_bus import RedisBus
from gateway.db.redis_link import RedisLink
from gateway.routing.breaker import Breakers
from gateway.routing.shared_circuits import SharedCircuits
from gateway.settings import Settings

THRESHOLD = 5


async def replica(url: str, prefix: str) -> tuple[Breakers, SharedCircuits, RedisBus]:
    link = RedisLink.from_settings(Settings(_env_file=None, redis_url=url, redis_prefix=prefix))
    assert link is not None
    breakers = Breakers(THRESHOLD, 30, 30)
    bus = RedisBus(link, 1.0)
    shared = SharedCircuits(breakers, link, bus)
    bus.start()
    await asyncio.wait_for(bus.subscribed.wait(), 10)
    return breakers, shared, bus


def request_path_ns(breakers: Breakers, calls: int) -> float:
    leaf = Leaf(path="config", provider="openai", api_key="sk-bench")
    is_open, record = breakers.is_open, breakers.record
    started = time.perf_counter_ns()
    for _ in range(calls):
        if not is_open(leaf):
            record(leaf, None)
    return (time.perf_counter_ns() - started) / calls


async def _bench(args: argparse.Namespace) -> None:
    prefix = f"bench-circuits-{uuid.uuid4().hex[:8]}:"
    a, shared_a, bus_a = await replica(args.redis_url, prefix)
    b, _, bus_b = await replica(args.redis_url, prefix)
    alone = Breakers(THRESHOLD, 30, 30)
    try:
        timings: dict[str, list[float]] = {"alone": [], "shared": []}
        for _ in range(5):
            timings["alone"].append(request_path_ns(alone, args.calls))
            timings["shared"].append(request_path_ns(a, args.calls))
        await shared_a.drain()
        print(f"request path (is_open + record success), best of 5 x {args.calls}:")
        for name, values in timings.items():
            print(f"  {name:<7} {min(values):7.1f} ns/request")
        print(f"  Redis calls made by the shared one: {shared_a.sent}")

        delays = []
        for n in range(args.opens):
            leaf = Leaf(path="config", provider="openai", api_key=f"sk-target-{n}")
            started = time.perf_counter()
            for _ in range(THRESHOLD):
                a.record(leaf, 503)
            while not b.is_open(leaf):
                await asyncio.sleep(0)
            delays.append(time.perf_counter() - started)
        delays.sort()
        print(f"opening reaches the other replica ({args.opens} targets): "
              f"p50 {delays[len(delays) // 2] * 1000:.2f} ms, "
              f"p99 {delays[int(len(delays) * 0.99)] * 1000:.2f} ms, "
              f"max {delays[-1] * 1000:.2f} ms")
    finally:
        for bus in (bus_a, bus_b):
            await bus.stop()
            await bus.link.close()
        with redis.Redis.from_url(args.redis_url) as client:
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shared_circuits",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--opens", type=int, default=200)
    run_fast(_bench(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

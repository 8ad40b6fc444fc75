"""Circuit breakers shared through a real Redis: two `Breakers`, as two replicas hold them.

The documented bound (docs/decisions.md, "Replicas"): an opening reaches every subscribed
replica in one pub/sub delivery; these tests poll for it with a deadline, never sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.contracts.plan import Leaf
from gateway.db.redis_bus import RedisBus
from gateway.db.redis_link import RedisLink
from gateway.routing.breaker import Breakers
from gateway.routing.shared_circuits import SharedCircuits
from gateway.settings import Settings
from tests.support.redis import RedisCut, RedisProcess, SharedRedis, redis_to_cut
from tests.support.waiting import wait_until

THRESHOLD = 3
DEADLINE_S = 5.0  # generous for a busy machine: the delivery itself takes about a millisecond
LEAF = Leaf(path="config.targets[0]", provider="openai", api_key="sk-shared-circuit-test")
OTHER = Leaf(path="config.targets[1]", provider="groq", api_key="sk-another-target")


@dataclass
class Replica:
    breakers: Breakers
    shared: SharedCircuits
    bus: RedisBus
    link: RedisLink

    async def close(self) -> None:
        await self.shared.drain()
        await self.bus.stop()
        await self.link.close()


async def replica(url: str, prefix: str) -> Replica:
    """What one gateway process builds with GATEWAY_CIRCUIT_SHARED=true."""
    settings = Settings(_env_file=None, redis_url=url, redis_prefix=prefix,
                        redis_retry_interval=0.1)
    link = RedisLink.from_settings(settings)
    assert link is not None
    breakers = Breakers(THRESHOLD, window_s=30, cooldown_s=30)
    bus = RedisBus(link, settings.redis_retry_interval, ping_interval=0.5, poll_s=0.1)
    shared = SharedCircuits(breakers, link, bus)
    bus.start()
    await asyncio.wait_for(bus.subscribed.wait(), DEADLINE_S)
    return Replica(breakers, shared, bus, link)


async def eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


@pytest.fixture
async def two(shared_redis: SharedRedis) -> AsyncIterator[tuple[Replica, Replica]]:
    a = await replica(shared_redis.url, shared_redis.prefix)
    b = await replica(shared_redis.url, shared_redis.prefix)
    yield a, b
    await a.close()
    await b.close()


async def test_failures_recorded_through_one_open_the_circuit_in_the_other(two):
    a, b = two
    for _ in range(THRESHOLD):
        a.breakers.record(LEAF, 503)
    assert a.breakers.is_open(LEAF)  # locally at once, as without sharing
    assert await eventually(lambda: b.breakers.is_open(LEAF))
    assert not b.breakers.is_open(OTHER)
    assert b.breakers.adopted == 1 and b.breakers.opens == 0


async def test_failures_count_across_replicas(two):
    """Two failures here and one there: neither process alone reached the threshold."""
    a, b = two
    a.breakers.record(LEAF, 500)
    a.breakers.record(LEAF, 502)
    await a.shared.drain()
    b.breakers.record(LEAF, 429)
    assert await eventually(lambda: a.breakers.is_open(LEAF) and b.breakers.is_open(LEAF))
    assert a.breakers.opens == 0 and b.breakers.opens == 0  # opened by the shared count


async def test_a_success_resets_the_count_for_every_replica(two):
    a, b = two
    a.breakers.record(LEAF, 500)
    a.breakers.record(LEAF, 500)
    a.breakers.record(LEAF, None)  # the target answered: the streak is over
    await a.shared.drain()
    b.breakers.record(LEAF, 500)
    await b.shared.drain()
    assert not a.breakers.is_open(LEAF) and not b.breakers.is_open(LEAF)


async def test_a_success_closes_an_open_circuit_everywhere(two):
    a, b = two
    for _ in range(THRESHOLD):
        a.breakers.record(LEAF, 503)
    assert await eventually(lambda: b.breakers.is_open(LEAF))
    b.breakers.record(LEAF, None)  # every target was open, so this one was tried, and answered
    assert not b.breakers.is_open(LEAF)
    assert await eventually(lambda: not a.breakers.is_open(LEAF))


async def test_successes_cost_no_redis_call(two):
    """The request path: a target that never failed here is reported to nobody."""
    a, _ = two
    for _ in range(1000):
        assert not a.breakers.is_open(LEAF)
        a.breakers.record(LEAF, None)
    await a.shared.drain()
    assert a.shared.sent == 0 and a.shared.unsent == 0


async def test_a_replica_that_starts_later_finds_the_open_circuit(shared_redis, two):
    a, _ = two
    for _ in range(THRESHOLD):
        a.breakers.record(LEAF, 503)
    await a.shared.drain()
    late = await replica(shared_redis.url, shared_redis.prefix)
    try:
        assert late.breakers.is_open(LEAF)  # read when it subscribed, before any message
    finally:
        await late.close()


@pytest.fixture
def private_redis(request: pytest.FixtureRequest) -> Iterator[RedisProcess | RedisCut]:
    server = redis_to_cut(request)
    yield server
    server.close()


async def test_redis_down_each_replica_keeps_its_own_breakers(private_redis):
    a = await replica(private_redis.url, private_redis.prefix)
    b = await replica(private_redis.url, private_redis.prefix)
    try:
        private_redis.stop()
        assert await eventually(lambda: not a.bus.subscribed.is_set())
        for _ in range(THRESHOLD - 1):
            a.breakers.record(LEAF, 500)  # never raises, never waits
        b.breakers.record(LEAF, 500)
        await a.shared.drain()
        await b.shared.drain()
        assert not a.breakers.is_open(LEAF) and not b.breakers.is_open(LEAF)  # not shared
        a.breakers.record(LEAF, 500)
        assert a.breakers.is_open(LEAF)  # its own threshold, as without sharing
        await a.shared.drain()
        assert a.shared.unsent >= THRESHOLD and b.shared.unsent >= 1

        private_redis.start()  # the same port: each replica subscribes again by itself
        assert await eventually(lambda: a.bus.resubscribed == 1 and b.bus.resubscribed == 1)
        for _ in range(THRESHOLD):
            b.breakers.record(OTHER, 503)
        assert await eventually(lambda: a.breakers.is_open(OTHER))
    finally:
        await a.close()
        await b.close()


def test_two_gateways_with_the_setting_share_an_opening(start_gateway, shared_redis, mock_url):
    """The app's wiring: failures through one gateway open the circuit in the other."""
    settings = {"redis_url": shared_redis.url, "redis_prefix": shared_redis.prefix,
                "circuit_shared": True, "circuit_failure_threshold": 2}
    first, second = start_gateway(**settings), start_gateway(**settings)
    headers = {"x-portkey-provider": "openai", "authorization": "Bearer sk-circuit",
               "x-portkey-custom-host": f"{mock_url}/s/status-503/v1"}
    for _ in range(2):
        response = httpx.post(f"{first.url}/v1/chat/completions", headers=headers, timeout=30,
                              json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 503
    breakers = second.config.app.state.services.breakers
    assert wait_until(lambda: breakers.adopted == 1, timeout=DEADLINE_S)


def test_the_setting_without_redis_says_it_shares_nothing(start_gateway, caplog):
    with caplog.at_level("WARNING", logger="gateway"):
        gateway = start_gateway(circuit_shared=True, redis_url=None)
    assert gateway.config.app.state.services.breakers is not None
    assert any("GATEWAY_CIRCUIT_SHARED is on but REDIS_URL is not set" in record.getMessage()
               for record in caplog.records)

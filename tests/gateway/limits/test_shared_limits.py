"""Two gateway processes sharing one Redis enforce one limit together."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.limits.test_limits import BODY, key_headers, settled
from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.limited_keys import key_store_settings, with_keys
from tests.support.mock_upstream import MockUpstream
from tests.support.redis import SharedRedis
from tests.support.servers import ThreadedServer

KEYS = {"gk-rpm": {"name": "rpm", "limits": {"rpm": 6}},
        "gk-conc": {"name": "conc", "limits": {"max_concurrent": 4}}}


@pytest.fixture
def thread_gateway(start_gateway: Callable[..., ThreadedServer], shared_redis: SharedRedis,
                   mock_url: str, tmp_path: Path) -> ThreadedServer:
    server = start_gateway(redis_url=shared_redis.url, redis_prefix=shared_redis.prefix,
                           database_url=f"sqlite+aiosqlite:///{tmp_path}/shared.sqlite3",
                           provider_base_urls={"anyscale": f"{mock_url}/s/slow-2000/v1"},
                           **key_store_settings())
    return with_keys(server, KEYS)


@pytest.fixture
def subprocess_gateway(thread_gateway: ThreadedServer, shared_redis: SharedRedis,
                       mock_url: str, tmp_path: Path) -> Iterator[str]:
    """`python -m gateway serve` in its own OS process, on the same database (so the same
    keys), Redis and key prefix as the in-test gateway."""
    env = gateway_env(tmp_path, mock_url, REDIS_URL=shared_redis.url,
                      GATEWAY_REDIS_PREFIX=shared_redis.prefix,
                      DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/shared.sqlite3",
                      GATEWAY_PROVIDER_BASE_URLS=json.dumps(
                          {"anyscale": f"{mock_url}/s/slow-2000/v1"}))
    process = GatewayProcess(env, cwd=tmp_path).start()
    yield process.url
    process.stop()


def test_rpm_is_one_limit_across_two_processes(subprocess_gateway: str,
                                               thread_gateway: ThreadedServer,
                                               mock: MockUpstream, mock_url: str):
    urls = [subprocess_gateway, thread_gateway.url] * 5
    fast = key_headers("gk-rpm", **{"x-portkey-custom-host": f"{mock_url}/v1"})
    statuses = [httpx.post(f"{url}/v1/chat/completions", json=BODY, timeout=30,
                           headers=fast).status_code for url in urls]
    assert Counter(statuses) == {200: 6, 429: 4}
    assert statuses[:6] == [200] * 6  # the limit counted requests served by both
    assert len(mock.requests) == 6


async def test_concurrency_is_one_limit_across_two_processes(subprocess_gateway: str,
                                                             thread_gateway: ThreadedServer,
                                                             mock: MockUpstream):
    urls = [subprocess_gateway, thread_gateway.url] * 10
    async with httpx.AsyncClient(timeout=60) as client:
        responses = await asyncio.gather(*(
            client.post(f"{url}/v1/chat/completions", json=BODY, headers=key_headers("gk-conc"))
            for url in urls))
    assert Counter(r.status_code for r in responses) == {200: 4, 429: 16}
    assert mock.max_in_flight == 4
    settled(thread_gateway)

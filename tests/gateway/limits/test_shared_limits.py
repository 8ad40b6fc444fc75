"""Two gateway processes sharing one Redis enforce one limit together."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.limits.test_limits import BODY, key_headers, settled, with_keys
from tests.support.mock_upstream import MockUpstream
from tests.support.redis import SharedRedis
from tests.support.servers import ThreadedServer, free_port

KEYS = {"keys": {"gk-rpm": {"id": "k-rpm", "name": "rpm", "limits": {"rpm": 6}},
                 "gk-conc": {"id": "k-conc", "name": "conc", "limits": {"max_concurrent": 4}}}}


@pytest.fixture
def subprocess_gateway(shared_redis: SharedRedis, mock_url: str,
                       tmp_path: Path) -> Iterator[str]:
    """A gateway in its own OS process, on the same Redis and key prefix as the test's."""
    port = free_port()
    env = os.environ | {
        "REDIS_URL": shared_redis.url, "GATEWAY_REDIS_PREFIX": shared_redis.prefix,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/other.sqlite3",
        "GATEWAY_PROVIDER_BASE_URLS": json.dumps({"anyscale": f"{mock_url}/s/slow-2000/v1"}),
        "TEST_GATEWAY_KEYS": json.dumps(KEYS),
    }
    process = subprocess.Popen([sys.executable, "-m", "tests.support.limited_gateway",
                                str(port)], env=env, cwd=Path(__file__).parents[3])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the second gateway process did not start") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=15)


@pytest.fixture
def thread_gateway(start_gateway: Callable[..., ThreadedServer], shared_redis: SharedRedis,
                   mock_url: str) -> ThreadedServer:
    server = start_gateway(redis_url=shared_redis.url, redis_prefix=shared_redis.prefix,
                           provider_base_urls={"anyscale": f"{mock_url}/s/slow-2000/v1"})
    return with_keys(server, KEYS["keys"])


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

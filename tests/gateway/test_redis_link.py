"""Redis going away: requests still succeed, the gateway warns and counts, and comes back by
itself. Uses a private redis-server that the test kills and restarts on the same port."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from tests.gateway.cache.test_cached import cache_headers
from tests.gateway.limits.test_limits import BODY, chat, services, track_records
from tests.support.limited_keys import issued_id, issued_key, key_store_settings, with_keys
from tests.support.mock_upstream import MockUpstream
from tests.support.redis import RedisCut, RedisProcess, redis_to_cut
from tests.support.servers import ThreadedServer, free_port

LIMITS = {"rpm": 1000, "tpm": 1_000_000, "max_concurrent": 10, "budget_usd": 100.0}


@pytest.fixture
def private_redis(request: pytest.FixtureRequest) -> Iterator[RedisProcess | RedisCut]:
    server = redis_to_cut(request)
    yield server
    server.close()


def test_redis_stopped_and_restarted_mid_test_fails_no_request(
        start_gateway: Callable[..., ThreadedServer], private_redis: RedisProcess | RedisCut,
        mock: MockUpstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    gateway = track_records(start_gateway(
        redis_url=private_redis.url, redis_prefix=private_redis.prefix,
        redis_retry_interval=0.2, **key_store_settings()))
    with_keys(gateway, {"gk-test": {"name": "ci", "limits": LIMITS}})
    state = services(gateway)
    headers = cache_headers() | {"x-portkey-api-key": issued_key("gk-test")}

    def cache_status() -> str:
        response = chat(gateway, headers)
        assert response.status_code == 200, response.text
        return str(response.headers["x-portkey-cache-status"])

    assert [cache_status(), cache_status()] == ["MISS", "HIT"]

    private_redis.stop()
    with caplog.at_level(logging.WARNING, logger="gateway.redis"):
        assert [cache_status() for _ in range(5)] == ["MISS"] * 5
    assert "redis unavailable" in caplog.text
    assert not state.redis.healthy and state.redis.errors >= 1
    assert state.limiter.failed_open >= 1 and state.cache.unavailable >= 1

    private_redis.start()
    seen: list[str] = []
    for _ in range(200):
        seen.append(cache_status())
        if seen[-1] == "HIT":
            break
        time.sleep(0.05)
    assert seen[-1] == "HIT"
    assert state.redis.healthy and state.redis.recoveries == 1
    with redis.Redis.from_url(private_redis.url) as client:  # limits are shared again
        assert client.exists(f"{private_redis.prefix}limits:api_key:{issued_id('gk-test')}:rpm")


@pytest.mark.parametrize("fail_closed", [False, True])
def test_limits_fail_open_by_default_and_closed_when_set(
        start_gateway: Callable[..., ThreadedServer], mock: MockUpstream, fail_closed: bool):
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    gateway = track_records(start_gateway(redis_url=nothing_there,
                                          limits_fail_closed=fail_closed,
                                          **key_store_settings()))
    with_keys(gateway, {"gk-test": {"name": "ci", "limits": {"rpm": 1}}, "gk-free": {}})
    responses = [chat(gateway) for _ in range(3)]
    if fail_closed:
        assert {r.status_code for r in responses} == {429}
        assert responses[0].json()["error"]["code"] == "limits_unavailable"
        assert responses[0].headers["retry-after"] == "1"
    else:
        assert {r.status_code for r in responses} == {200}
        assert services(gateway).limiter.failed_open == 3
    # A key without limits never needs Redis.
    free = httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY,
                      headers={"x-portkey-api-key": issued_key("gk-free"),
                               "x-portkey-provider": "anyscale"})
    assert free.status_code == 200



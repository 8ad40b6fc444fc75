"""A revocation reaches every replica: two gateway processes on one Postgres and one Redis.

Revoked through one replica's admin API, a key is refused by the other one as soon as the
pub/sub message arrives (the key cache TTL is 10 minutes here, so nothing else could do it);
with Redis away, within GATEWAY_KEY_CACHE_TTL. Both are polled with a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.databases import ADMIN_TOKEN, admin_client, new_master_key, require_postgres
from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.redis import RedisCut, RedisProcess, redis_to_cut

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def chat(gateway: GatewayProcess, key: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, timeout=30, headers={
        "x-portkey-api-key": key, "x-portkey-provider": "openai",
        "authorization": "Bearer sk-upstream"})


def refused_within(gateway: GatewayProcess, key: str, seconds: float) -> httpx.Response:
    """Poll until the key is refused, or `seconds` passed; the last answer."""
    deadline = time.monotonic() + seconds
    while True:
        response = chat(gateway, key)
        if response.status_code != 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


@pytest.fixture
def replicas(tmp_path: Path, mock_url: str) -> Iterator[Callable[..., list[GatewayProcess]]]:
    database = require_postgres()
    started: list[GatewayProcess] = []
    master_key = new_master_key()

    def start(redis_url: str, prefix: str, **env: str) -> list[GatewayProcess]:
        for name in ("a", "b"):  # one after the other: the first migrates the new schema
            folder = tmp_path / name
            folder.mkdir()
            process = GatewayProcess(gateway_env(
                folder, mock_url, DATABASE_URL=database, REDIS_URL=redis_url,
                GATEWAY_REDIS_PREFIX=prefix, GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN,
                GATEWAY_MASTER_KEY=master_key, GATEWAY_AUTO_MIGRATE="true", **env), cwd=folder)
            started.append(process.start())
        return started

    yield start
    for process in started:
        process.stop()


def issue_key(gateway: GatewayProcess) -> tuple[str, str]:
    with admin_client(gateway) as admin:
        response = admin.post("/admin/api-keys", json={"name": "replicas",
                                                       "scopes": ["inference"]})
    assert response.status_code == 201, response.text
    return response.json()["key"], response.json()["id"]


def revoke(gateway: GatewayProcess, key_id: str) -> None:
    with admin_client(gateway) as admin:
        assert admin.delete(f"/admin/api-keys/{key_id}").status_code == 200


def test_a_key_revoked_on_one_replica_is_refused_by_the_other(replicas, shared_redis):
    a, b = replicas(shared_redis.url, shared_redis.prefix, GATEWAY_KEY_CACHE_TTL="600")
    key, key_id = issue_key(a)
    assert chat(b, key).status_code == 200  # now in b's cache, for ten minutes
    assert chat(a, key).status_code == 200

    revoke(a, key_id)
    refused = refused_within(b, key, seconds=10)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "api_key_revoked"
    assert chat(a, key).status_code == 401


@pytest.fixture
def private_redis(request: pytest.FixtureRequest) -> Iterator[RedisProcess | RedisCut]:
    server = redis_to_cut(request)
    yield server
    server.close()


def test_with_redis_away_a_revocation_reaches_the_other_replica_within_the_ttl(
        replicas, private_redis):
    a, b = replicas(private_redis.url, private_redis.prefix, GATEWAY_KEY_CACHE_TTL="1",
                    GATEWAY_REDIS_RETRY_INTERVAL="0.2")
    key, key_id = issue_key(a)
    assert chat(b, key).status_code == 200
    private_redis.stop()

    revoke(a, key_id)  # the write commits; its message cannot go out
    started = time.monotonic()
    refused = refused_within(b, key, seconds=10)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "api_key_revoked"
    # No timed assertion here: how long it took is the TTL's business, printed for the curious.
    print(f"refused after {time.monotonic() - started:.2f}s (GATEWAY_KEY_CACHE_TTL=1)")

"""Limits as clients see them: 429s with OpenAI-style errors, in process and in the real Redis.

Keys and their limits live in the gateway's real key store, created through its admin API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.limited_keys import issued_key, key_store_settings, with_keys
from tests.support.mock_upstream import STREAM_WORDS, MockUpstream, prompt_tokens
from tests.support.recording import add_recorder
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_until

MESSAGES = [{"role": "user", "content": "Count my tokens please"}]
TOKENS_PER_REQUEST = prompt_tokens({"messages": MESSAGES}) + len(STREAM_WORDS)
BODY = {"model": "m", "messages": MESSAGES}


def key_headers(alias: str = "gk-test", **extra: str) -> dict[str, str]:
    return {"x-portkey-api-key": issued_key(alias), "x-portkey-provider": "anyscale",
            "authorization": "Bearer sk-provider", **extra}


def services(server: ThreadedServer) -> Any:
    return server.config.app.state.services


class RecordedIds(set[str]):
    """A recorder keeping the ids of the requests the gateway recorded. Added after the
    limiter's recorder, so an id here means that request's settlement has begun."""

    def __call__(self, outcome: Any) -> None:
        self.add(outcome.request.request_id)


def track_records(server: ThreadedServer) -> ThreadedServer:
    """Let `settled` wait for a request's settlement to begin (before any request is sent)."""
    ids = server.config.app.state.recorded_ids = RecordedIds()
    add_recorder(server, ids)
    return server


def recorded_ids(server: ThreadedServer) -> RecordedIds:
    return server.config.app.state.recorded_ids


def settled(server: ThreadedServer, request_id: str | None = None) -> None:
    """Wait until the gateway has released and charged every finished request, `request_id`
    included: it is recorded just after its response went out, so its settlement may not
    have begun when the client has the response."""
    if request_id is not None:
        assert wait_until(lambda: request_id in recorded_ids(server)), request_id
    assert wait_until(lambda: not services(server).limiter.pending)


def chat(server: ThreadedServer, headers: dict[str, str] | None = None,
         **body: Any) -> httpx.Response:
    response = httpx.post(f"{server.url}/v1/chat/completions", json=BODY | body,
                          headers=headers or key_headers(), timeout=30)
    settled(server, response.headers.get("x-portkey-request-id"))
    return response


@pytest.fixture(params=["memory", "redis"])
def gateway_for(request: pytest.FixtureRequest,
                start_gateway: Callable[..., ThreadedServer]) -> Callable[..., ThreadedServer]:
    """Start a gateway whose limits live in process or in Redis, with the given key limits."""
    overrides: dict[str, Any] = {}
    if request.param == "redis":
        redis = request.getfixturevalue("shared_redis")
        # A generous timeout: on a loaded machine a slow Redis call must not fail open.
        overrides = {"redis_url": redis.url, "redis_prefix": redis.prefix, "redis_timeout": 5.0}

    def start(limits: dict[str, Any], **settings: Any) -> ThreadedServer:
        server = track_records(start_gateway(**(overrides | key_store_settings() | settings)))
        return with_keys(server, {"gk-test": {"name": "ci", "limits": limits}})

    return start


def fresh_minute(margin: float = 10) -> None:
    """Counters per calendar minute: start a test's requests well inside one."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.1)


async def test_at_most_30_in_flight_and_the_rest_get_429(gateway_for, mock: MockUpstream,
                                                         mock_url: str):
    gateway = gateway_for({"max_concurrent": 30},
                          provider_base_urls={"anyscale": f"{mock_url}/s/slow-3000/v1"})
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as client:
        responses = await asyncio.gather(*(
            client.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=key_headers())
            for _ in range(100)))
    assert Counter(r.status_code for r in responses) == {200: 30, 429: 70}
    assert mock.max_in_flight == 30
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"] == {
        "message": "API key 'ci' allows 30 concurrent requests", "type": "rate_limit_error",
        "param": None, "code": "rate_limit_exceeded"}
    settled(gateway)
    mock.reset()
    # Every slot came back: another full batch gets through.
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as client:
        again = await asyncio.gather(*(
            client.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=key_headers())
            for _ in range(30)))
    assert {r.status_code for r in again} == {200}


def test_rpm_admits_exactly_its_count(gateway_for, mock: MockUpstream):
    gateway = gateway_for({"rpm": 5})
    responses = [chat(gateway) for _ in range(8)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 3
    assert len(mock.requests) == 5
    error = responses[-1].json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"] == "API key 'ci' allows 5 requests per minute"
    assert 1 <= int(responses[-1].headers["retry-after"]) <= 60


def test_tokens_per_minute_are_charged_with_real_usage(gateway_for, mock: MockUpstream):
    fresh_minute()
    gateway = gateway_for({"tpm": 2 * TOKENS_PER_REQUEST})
    statuses = [chat(gateway).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # two requests used the minute's tokens
    refused = chat(gateway)
    assert refused.json()["error"]["message"] == \
        f"API key 'ci' allows {2 * TOKENS_PER_REQUEST} tokens per minute"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


@pytest.mark.parametrize("period", [None, "daily"])
def test_budget_stops_requests_once_the_logged_cost_passes_it(gateway_for, mock: MockUpstream,
                                                             period: str | None):
    # Priced so that each request's logged cost is exactly $0.02.
    per_million = Decimal("0.02") * 1_000_000 / TOKENS_PER_REQUEST
    gateway = gateway_for({"budget_usd": 0.05, "budget_period": period}, model_prices={
        "anyscale/m": {"input": float(per_million), "output": float(per_million)}})
    statuses = [chat(gateway).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]  # 0.06 spent after the third
    refused = chat(gateway)
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert error["type"] == "rate_limit_error"
    assert ("retry-after" in refused.headers) == (period == "daily")


def test_virtual_key_limits_apply_to_every_api_key_using_it(gateway_for, mock: MockUpstream):
    gateway = gateway_for({})
    with_keys(gateway, {"gk-a": {}, "gk-b": {}},
              {"vk-shared": {"provider": "anyscale", "secret": "sk-up", "limits": {"rpm": 2}}})
    statuses = [chat(gateway, {"x-portkey-api-key": issued_key(alias),
                               "x-portkey-virtual-key": "vk-shared"})
                for alias in ("gk-a", "gk-b", "gk-a")]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[-1].json()["error"]["message"] == \
        "virtual key 'vk-shared' allows 2 requests per minute"
    assert mock.requests[0].headers["authorization"] == "Bearer sk-up"


def test_slot_released_after_error_timeout_and_disconnect(gateway_for, mock: MockUpstream,
                                                         mock_url: str):
    gateway = gateway_for({"max_concurrent": 1})
    finished: list[Any] = []
    add_recorder(gateway, finished.append)

    def via(scenario: str, **extra: str) -> dict[str, str]:
        return key_headers(**{"x-portkey-custom-host": f"{mock_url}/s/{scenario}/v1"}, **extra)

    assert chat(gateway, via("status-500")).status_code == 500
    assert chat(gateway, via("hang", **{"x-portkey-request-timeout": "200"})).status_code == 408
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", headers=via("slow-300"),
                      json=BODY | {"stream": True}, timeout=30) as stream:
        next(stream.iter_lines())  # one event, then the client goes away
    wait_until(lambda: len(finished) >= 3)
    settled(gateway)
    assert [ctx.status for ctx in finished] == [500, 408, 499]
    assert chat(gateway).status_code == 200


def test_requests_without_limits_are_not_counted(gateway_for, mock: MockUpstream):
    gateway = gateway_for({})
    assert {chat(gateway).status_code for _ in range(3)} == {200}
    assert services(gateway).limiter.admitted == 0


def test_fallback_moves_past_a_virtual_key_over_its_limit(gateway_for, mock: MockUpstream,
                                                          mock_url: str):
    gateway = gateway_for({})
    with_keys(gateway, {}, {"vk-small": {"provider": "anyscale", "secret": "sk-small",
                                         "limits": {"rpm": 1}}})
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"virtual_key": "vk-small"},
                          {"provider": "groq", "api_key": "sk-groq",
                           "custom_host": f"{mock_url}/v1"}]}
    headers = {"x-portkey-api-key": issued_key("gk-test"),
               "x-portkey-config": json.dumps(config)}
    first, second = chat(gateway, headers), chat(gateway, headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert second.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert [r.headers["authorization"] for r in mock.requests] == ["Bearer sk-small",
                                                                  "Bearer sk-groq"]

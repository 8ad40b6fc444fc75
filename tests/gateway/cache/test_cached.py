"""The simple cache as a client sees it, in process and in the real Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.support.mock_upstream import STREAM_WORDS, MockUpstream
from tests.support.recording import add_recorder
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_until

TEXT = "".join(STREAM_WORDS)
MESSAGES = [{"role": "user", "content": "Cache me if you can"}]


def cache_headers(max_age: int = 60, **extra: str) -> dict[str, str]:
    config = {"provider": "anyscale", "api_key": "sk-provider",
              "cache": {"mode": "simple", "max_age": max_age}}
    return {"x-portkey-provider": "anyscale", "authorization": "Bearer sk-provider",
            "x-portkey-config": orjson.dumps(config).decode(), **extra}


@pytest.fixture(params=["memory", "redis"])
def gateway_for(request: pytest.FixtureRequest, start_gateway: Callable[..., ThreadedServer],
                monkeypatch: pytest.MonkeyPatch) -> Callable[..., ThreadedServer]:
    """Start a gateway with the cache in process or in Redis."""
    overrides: dict[str, Any] = {}
    if request.param == "redis":
        redis = request.getfixturevalue("shared_redis")
        overrides = {"redis_url": redis.url, "redis_prefix": redis.prefix, "redis_timeout": 5.0}
    return lambda **more: start_gateway(**(overrides | more))


@pytest.fixture
def cached_gateway(gateway_for: Callable[..., ThreadedServer]) -> ThreadedServer:
    return gateway_for()


def chat(gateway: ThreadedServer, headers: dict[str, str], **body: Any) -> httpx.Response:
    payload = {"model": "m", "messages": MESSAGES} | body
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=payload, headers=headers,
                      timeout=30)


def test_miss_then_hit_without_a_second_upstream_call(cached_gateway, mock: MockUpstream):
    first = chat(cached_gateway, cache_headers())
    second = chat(cached_gateway, cache_headers())
    assert first.status_code == second.status_code == 200
    assert first.headers["x-portkey-cache-status"] == "MISS"
    assert second.headers["x-portkey-cache-status"] == "HIT"
    assert second.json()["choices"][0]["message"]["content"] == TEXT
    assert second.json() == first.json()
    assert len(mock.requests) == 1


def test_without_cache_config_status_is_disabled(cached_gateway, mock: MockUpstream):
    headers = {"x-portkey-provider": "anyscale", "authorization": "Bearer sk-provider"}
    for _ in range(2):
        assert chat(cached_gateway, headers).headers["x-portkey-cache-status"] == "DISABLED"
    assert len(mock.requests) == 2


def test_force_refresh_skips_the_read_and_rewrites_the_entry(cached_gateway, mock: MockUpstream):
    chat(cached_gateway, cache_headers())
    refreshed = chat(cached_gateway, cache_headers(**{"x-portkey-cache-force-refresh": "true"}))
    assert refreshed.status_code == 200
    assert refreshed.headers["x-portkey-cache-status"] == "REFRESH"
    assert len(mock.requests) == 2
    assert chat(cached_gateway, cache_headers()).headers["x-portkey-cache-status"] == "HIT"
    assert len(mock.requests) == 2


def test_namespaces_and_bodies_isolate_entries(cached_gateway, mock: MockUpstream):
    def status(namespace: str, **body: Any) -> str:
        headers = cache_headers(**{"x-portkey-cache-namespace": namespace})
        return chat(cached_gateway, headers, **body).headers["x-portkey-cache-status"]

    assert status("team-a") == "MISS"
    assert status("team-b") == "MISS"
    assert status("team-a") == "HIT"
    assert status("team-b") == "HIT"
    assert status("team-a", temperature=0.5) == "MISS"
    assert len(mock.requests) == 3


def test_failed_responses_are_not_cached(gateway_for, mock: MockUpstream, mock_url: str):
    gateway = gateway_for(provider_base_urls={"anyscale": f"{mock_url}/s/status-500/v1"})
    for _ in range(2):
        response = chat(gateway, cache_headers())
        assert response.status_code == 500
    assert len(mock.requests) == 2


def test_stream_request_is_replayed_from_a_cached_completion(cached_gateway, mock: MockUpstream):
    chat(cached_gateway, cache_headers())
    client = openai.OpenAI(api_key="sk-provider", base_url=f"{cached_gateway.url}/v1",
                           default_headers=cache_headers(), max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    assert raw.headers["x-portkey-cache-status"] == "HIT"
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert len(mock.requests) == 1


def test_replayed_stream_ends_with_done(cached_gateway, mock: MockUpstream):
    chat(cached_gateway, cache_headers())
    response = chat(cached_gateway, cache_headers(), stream=True)
    assert response.headers["x-portkey-cache-status"] == "HIT"
    assert response.text.endswith("data: [DONE]\n\n")
    assert '"usage"' not in response.text  # the client did not ask for it


def test_streamed_response_is_cached_once_complete(cached_gateway, mock: MockUpstream):
    streamed = chat(cached_gateway, cache_headers(), stream=True)
    assert streamed.headers["x-portkey-cache-status"] == "MISS"
    assert streamed.text.endswith("data: [DONE]\n\n")
    whole = chat(cached_gateway, cache_headers())
    assert whole.headers["x-portkey-cache-status"] == "HIT"
    body = whole.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": TEXT}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == len(STREAM_WORDS)
    again = chat(cached_gateway, cache_headers(), stream=True)
    assert again.headers["x-portkey-cache-status"] == "HIT"
    assert len(mock.requests) == 1


def test_stream_broken_midway_is_not_cached(gateway_for, mock: MockUpstream, mock_url: str):
    gateway = gateway_for(
        provider_base_urls={"anyscale": f"{mock_url}/s/drop-mid-stream/v1"})
    for _ in range(2):
        response = chat(gateway, cache_headers(), stream=True)
        assert response.headers["x-portkey-cache-status"] == "MISS"
    assert len(mock.requests) == 2


def test_cache_hits_are_recorded_with_zero_cost(cached_gateway, mock: MockUpstream):
    seen: list[Any] = []
    add_recorder(cached_gateway, seen.append)
    chat(cached_gateway, cache_headers())
    chat(cached_gateway, cache_headers())
    wait_until(lambda: len(seen) >= 2)  # recorded just after the response went out
    assert [ctx.cache_status for ctx in seen] == ["MISS", "HIT"]
    assert seen[1].cost_usd == 0.0
    assert seen[1].usage["completion_tokens"] == len(STREAM_WORDS)


def test_completions_and_embeddings_are_cached_too(cached_gateway, mock: MockUpstream):
    for path, body in (("completions", {"model": "m", "prompt": "Say hi"}),
                       ("embeddings", {"model": "e", "input": ["a", "b"]})):
        statuses = [httpx.post(f"{cached_gateway.url}/v1/{path}", json=body,
                               headers=cache_headers()).headers["x-portkey-cache-status"]
                    for _ in range(2)]
        assert statuses == ["MISS", "HIT"]
    assert len(mock.requests) == 2

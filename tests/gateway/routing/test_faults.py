"""Retries, fallbacks, timeouts and breakers against a real upstream that fails on cue.

Each target's behaviour is chosen by its custom host (`<mock>/s/<scenario>/v1`, see
tests/support/mock_upstream.py); requests go through the OpenAI SDK.
"""

from __future__ import annotations

import json
import time

import openai
import pytest
from portkey_ai import createHeaders

from tests.support.mock_upstream import STREAM_WORDS, MockUpstream
from tests.support.servers import ResetServer

MESSAGES = [{"role": "user", "content": "hello there"}]
TEXT = "".join(STREAM_WORDS)


@pytest.fixture
def fast_gateway(start_gateway):
    return start_gateway(retry_backoff_base_ms=5, retry_backoff_max_ms=20,
                         circuit_failure_threshold=100)


def target(mock_url: str, scenario: str, **extra):
    return {"provider": "openai", "api_key": "sk-test",
            "custom_host": f"{mock_url}/s/{scenario}/v1", **extra}


def client_for(gateway, config: dict) -> openai.OpenAI:
    return openai.OpenAI(api_key="unused", base_url=f"{gateway.url}/v1", max_retries=0,
                         default_headers=createHeaders(config=json.dumps(config)))


def call(client: openai.OpenAI, stream: bool):
    """One chat call; returns (text, response headers)."""
    if not stream:
        raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        return raw.parse().choices[0].message.content, raw.headers
    with client.chat.completions.with_streaming_response.create(
            model="m", messages=MESSAGES, stream=True) as response:
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
        return text, response.headers


both = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])


@both
def test_retries_then_succeeds_on_the_same_target(fast_gateway, mock: MockUpstream, mock_url,
                                                  stream):
    config = {"retry": {"attempts": 3}, **target(mock_url, "fail-first-2+status-503")}
    text, headers = call(client_for(fast_gateway, config), stream)
    assert text == TEXT
    assert headers["x-portkey-retry-attempt-count"] == "2"
    assert headers["x-portkey-last-used-option-index"] == "config"
    assert len(mock.requests) == 3


@both
def test_429_retry_after_is_honoured(fast_gateway, mock: MockUpstream, mock_url, stream):
    config = {"retry": {"attempts": 2},
              **target(mock_url, "fail-first-1+status-429+retry-after-1")}
    started = time.monotonic()
    text, headers = call(client_for(fast_gateway, config), stream)
    assert text == TEXT and headers["x-portkey-retry-attempt-count"] == "1"
    assert time.monotonic() - started >= 1.0  # waited as the upstream asked


def test_retry_after_beyond_the_budget_stops_retrying(fast_gateway, mock: MockUpstream,
                                                      mock_url):
    config = {"retry": {"attempts": 3}, **target(mock_url, "status-429+retry-after-600")}
    client = client_for(fast_gateway, config)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.response.headers["x-portkey-retry-attempt-count"] == "-1"
    assert len(mock.requests) == 1


@both
def test_exhausted_retries_fall_back_to_the_next_target(fast_gateway, mock: MockUpstream,
                                                        mock_url, stream):
    config = {"retry": {"attempts": 2}, "strategy": {"mode": "fallback"},
              "targets": [target(mock_url, "status-500"), target(mock_url, "ok")]}
    text, headers = call(client_for(fast_gateway, config), stream)
    assert text == TEXT
    assert headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert headers["x-portkey-retry-attempt-count"] == "0"
    assert headers["x-portkey-provider"] == "openai"
    assert [r.scenario for r in mock.requests] == ["status-500"] * 3 + ["ok"]


def test_on_status_codes_narrows_fallback(fast_gateway, mock: MockUpstream, mock_url):
    config = {"strategy": {"mode": "fallback", "on_status_codes": [429]},
              "targets": [target(mock_url, "status-503"), target(mock_url, "ok")]}
    with pytest.raises(openai.InternalServerError) as info:
        client_for(fast_gateway, config).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 503
    assert [r.scenario for r in mock.requests] == ["status-503"]


def test_non_retryable_status_is_not_retried(fast_gateway, mock: MockUpstream, mock_url):
    config = {"retry": {"attempts": 3}, **target(mock_url, "status-400")}
    with pytest.raises(openai.BadRequestError) as info:
        client_for(fast_gateway, config).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.response.headers["x-portkey-retry-attempt-count"] == "0"
    assert len(mock.requests) == 1


@both
def test_hang_past_timeout_is_408_then_falls_back(fast_gateway, mock: MockUpstream, mock_url,
                                                  stream):
    config = {"request_timeout": 300, "strategy": {"mode": "fallback"},
              "targets": [target(mock_url, "hang"), target(mock_url, "ok")]}
    text, headers = call(client_for(fast_gateway, config), stream)
    assert text == TEXT
    assert headers["x-portkey-last-used-option-index"] == "config.targets[1]"


@both
def test_timeout_alone_gives_408_timeout_error(fast_gateway, mock: MockUpstream, mock_url,
                                               stream):
    config = {"request_timeout": 200, **target(mock_url, "hang")}
    with pytest.raises(openai.APIStatusError) as info:
        call(client_for(fast_gateway, config), stream)
    assert info.value.status_code == 408
    assert info.value.body["type"] == "timeout_error"


def test_timeout_header_wins_over_config(fast_gateway, mock: MockUpstream, mock_url):
    config = {"request_timeout": 60_000, **target(mock_url, "slow-600")}
    client = openai.OpenAI(api_key="unused", base_url=f"{fast_gateway.url}/v1", max_retries=0,
                           default_headers={"x-portkey-config": json.dumps(config),
                                            "x-portkey-request-timeout": "150"})
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 408


@both
def test_connection_reset_is_retried_and_falls_back(fast_gateway, mock: MockUpstream, mock_url,
                                                    stream):
    with ResetServer() as reset:
        config = {"retry": {"attempts": 1}, "strategy": {"mode": "fallback"},
                  "targets": [{"provider": "openai", "api_key": "k",
                               "custom_host": f"{reset.url}/v1"}, target(mock_url, "ok")]}
        text, headers = call(client_for(fast_gateway, config), stream)
        assert reset.accepted == 2  # first try and one retry
    assert text == TEXT
    assert headers["x-portkey-last-used-option-index"] == "config.targets[1]"


def test_error_event_before_first_chunk_falls_back(fast_gateway, mock: MockUpstream, mock_url):
    config = {"strategy": {"mode": "fallback"},
              "targets": [target(mock_url, "error-event"), target(mock_url, "ok")]}
    text, headers = call(client_for(fast_gateway, config), stream=True)
    assert text == TEXT
    assert headers["x-portkey-last-used-option-index"] == "config.targets[1]"


def test_drop_mid_stream_ends_with_an_error_event(fast_gateway, mock: MockUpstream, mock_url):
    config = {"strategy": {"mode": "fallback"},
              "targets": [target(mock_url, "drop-mid-stream"), target(mock_url, "ok")]}
    client = client_for(fast_gateway, config)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == STREAM_WORDS[:2]  # what arrived before the drop was relayed
    assert "openai" in info.value.message
    assert [r.scenario for r in mock.requests] == ["drop-mid-stream"]  # committed: no fallback


@both
def test_every_target_failing_returns_the_last_failure_with_attempts(
        fast_gateway, mock: MockUpstream, mock_url, stream):
    config = {"strategy": {"mode": "fallback"},
              "targets": [target(mock_url, "status-500"), target(mock_url, "status-429")]}
    with pytest.raises(openai.RateLimitError) as info:
        call(client_for(fast_gateway, config), stream)
    body = info.value.response.json()
    assert body["error"]["message"] == "openai error: scripted failure 429"
    assert [(a["path"], a["status"]) for a in body["attempts"]] == [
        ("config.targets[0]", 500), ("config.targets[1]", 429)]
    assert info.value.response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


def test_open_circuit_is_skipped_by_fallback(start_gateway, mock: MockUpstream, mock_url):
    gateway = start_gateway(circuit_failure_threshold=2, circuit_cooldown_s=60)
    config = {"strategy": {"mode": "fallback"},
              "targets": [target(mock_url, "status-503"), target(mock_url, "ok")]}
    client = client_for(gateway, config)
    for _ in range(3):
        client.chat.completions.create(model="m", messages=MESSAGES)
    # Two failures opened the circuit: the third request went straight to the healthy target.
    assert [r.scenario for r in mock.requests] == ["status-503", "ok", "status-503", "ok", "ok"]


def test_loadbalance_and_conditional_through_the_gateway(fast_gateway, mock: MockUpstream,
                                                         mock_url):
    config = {"strategy": {"mode": "conditional", "default": "free",
                           "conditions": [{"query": {"metadata.plan": "paid",
                                                     "params.max_tokens": {"$gte": 10}},
                                           "then": "paid"}]},
              "targets": [{"name": "paid", "strategy": {"mode": "loadbalance"},
                           "targets": [target(mock_url, "ok+paid-a", weight=1),
                                       target(mock_url, "ok+paid-b", weight=0)]},
                          {"name": "free", **target(mock_url, "ok+free")}]}
    client = openai.OpenAI(api_key="unused", base_url=f"{fast_gateway.url}/v1", max_retries=0,
                           default_headers=createHeaders(config=json.dumps(config),
                                                         metadata={"plan": "paid"}))
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES,
                                                           max_tokens=20)
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[0].targets[0]"
    client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5)
    assert [r.scenario for r in mock.requests] == ["ok+paid-a", "ok+free"]


def test_override_params_win_over_the_body(fast_gateway, mock: MockUpstream, mock_url):
    config = {"override_params": {"model": "forced", "top_k": 3},
              **target(mock_url, "ok")}
    client_for(fast_gateway, config).chat.completions.create(model="m", messages=MESSAGES)
    assert mock.requests[0].body["model"] == "forced" and mock.requests[0].body["top_k"] == 3


def test_bad_config_is_a_400_listing_problems(fast_gateway, mock: MockUpstream):
    config = {"strategy": {"mode": "loadbalance"},
              "targets": [{"provider": "openai", "weight": -1}, {"provider": "nope"}]}
    with pytest.raises(openai.BadRequestError) as info:
        client_for(fast_gateway, config).chat.completions.create(model="m", messages=MESSAGES)
    errors = info.value.response.json()["errors"]
    assert "targets[0].weight: must be >= 0" in errors
    assert "targets[1].provider: unknown provider 'nope'" in errors
    assert mock.requests == []

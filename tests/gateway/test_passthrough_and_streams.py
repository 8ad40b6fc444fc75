"""Passthrough of other /v1 routes, stream usage capture, and client disconnects."""

from __future__ import annotations

import httpx
import openai
from portkey_ai import createHeaders

from tests.support.mock_upstream import STREAM_WORDS, MockUpstream, prompt_tokens
from tests.support.recording import add_recorder
from tests.support.waiting import wait_until

MESSAGES = [{"role": "user", "content": "count the words here"}]


def test_passthrough_forwards_body_untouched_with_provider_auth(gateway, mock: MockUpstream):
    raw = b'{"any": "thing", "kept": [1, 2, 3]}'
    response = httpx.post(f"{gateway.url}/v1/fine_tuning/jobs?limit=2", content=raw,
                          headers={"x-portkey-provider": "together-ai",
                                   "authorization": "Bearer tg-key",
                                   "content-type": "application/json", "x-custom": "yes",
                                   "x-portkey-metadata": '{"a": "b"}'})
    assert response.status_code == 200
    (seen,) = mock.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "fine_tuning/jobs", "limit=2")
    assert seen.body == {"any": "thing", "kept": [1, 2, 3]}
    assert seen.headers["authorization"] == "Bearer tg-key"
    assert seen.headers["x-custom"] == "yes"
    assert not any(h.startswith("x-portkey") for h in seen.headers)
    assert response.json()["echo"]["path"] == "fine_tuning/jobs"


def test_passthrough_get_and_delete(gateway, mock: MockUpstream):
    headers = {"x-portkey-provider": "openai", "authorization": "Bearer k"}
    assert httpx.get(f"{gateway.url}/v1/files/abc", headers=headers).status_code == 200
    assert httpx.delete(f"{gateway.url}/v1/files/abc", headers=headers).status_code == 200
    assert [(r.method, r.path) for r in mock.requests] == [("GET", "files/abc"),
                                                           ("DELETE", "files/abc")]


def test_forward_headers_reach_upstream_only_when_listed(gateway, mock: MockUpstream):
    client = openai.OpenAI(api_key="k", base_url=f"{gateway.url}/v1", max_retries=0,
                           default_headers={**createHeaders(provider="openai"),
                                            "x-portkey-forward-headers": "x-team",
                                            "x-team": "search", "x-other": "no"})
    client.chat.completions.create(model="m", messages=MESSAGES)
    seen = mock.requests[0].headers
    assert seen["x-team"] == "search" and "x-other" not in seen


def test_stream_usage_is_captured_for_every_stream(gateway, mock: MockUpstream):
    finished = []
    add_recorder(gateway, finished.append)
    client = openai.OpenAI(api_key="k", base_url=f"{gateway.url}/v1", max_retries=0,
                           default_headers=createHeaders(provider="openai"))
    list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    wait_until(lambda: finished, timeout=5)
    (ctx,) = finished
    assert ctx.usage == {"prompt_tokens": prompt_tokens({"messages": MESSAGES}),
                         "completion_tokens": len(STREAM_WORDS),
                         "total_tokens": prompt_tokens({"messages": MESSAGES}) + len(STREAM_WORDS)}
    assert ctx.status == 200 and ctx.request.stream


def test_client_disconnect_cancels_the_upstream_request(gateway, mock: MockUpstream, mock_url):
    headers = {"x-portkey-provider": "openai", "authorization": "Bearer k",
               "x-portkey-custom-host": f"{mock_url}/s/slow-1000/v1"}
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body,
                      headers=headers, timeout=10) as response:
        first = next(response.iter_lines())
        assert first.startswith("data: ")
    # The client left after one chunk; the upstream stream (6 s long) must end at once.
    wait_until(lambda: mock.cancelled_streams, timeout=3)
    assert mock.cancelled_streams == 1
    assert mock.in_flight == 0


def test_a_stream_idle_past_its_limit_is_a_timeout(start_gateway, mock_url):
    # slow-1000: every chunk, the first included, comes a second apart; the limit is 0.3 s.
    gateway = start_gateway(stream_idle_timeout=0.3)
    headers = {"x-portkey-provider": "openai", "authorization": "Bearer k",
               "x-portkey-custom-host": f"{mock_url}/s/slow-1000/v1"}
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers,
                          timeout=10)
    assert response.status_code == 408
    assert response.json()["error"]["type"] == "timeout_error"
    assert "sent nothing for too long" in response.json()["error"]["message"]

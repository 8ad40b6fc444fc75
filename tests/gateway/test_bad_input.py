"""Bad input gets a 4xx that names the problem, and never reaches the upstream."""

from __future__ import annotations

import httpx
import pytest

from tests.support.mock_upstream import MockUpstream

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
AUTH = {"authorization": "Bearer sk-x"}


def post(gateway, headers: dict[str, str], content: bytes | None = None, json=CHAT):
    kwargs = {"content": content} if content is not None else {"json": json}
    return httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers, **kwargs)


CASES = [
    ("body not JSON", {"x-portkey-provider": "openai", **AUTH}, b"{nope", 400,
     "request body is not valid JSON"),
    ("body not an object", {"x-portkey-provider": "openai"}, b"[1, 2]", 400,
     "request body must be a JSON object"),
    ("empty body", {"x-portkey-provider": "openai"}, b"", 400, "request body is empty"),
    ("stream not boolean", {"x-portkey-provider": "openai"}, b'{"stream": "yes"}', 400,
     "'stream' must be a boolean"),
    ("missing provider", AUTH, None, 400, "no provider given"),
    ("unknown provider", {"x-portkey-provider": "skynet", **AUTH}, None, 400,
     "unknown provider 'skynet'"),
    ("metadata not JSON", {"x-portkey-provider": "openai", "x-portkey-metadata": "{x"}, None,
     400, "x-portkey-metadata is not valid JSON"),
    ("metadata not an object", {"x-portkey-provider": "openai", "x-portkey-metadata": "[1]"},
     None, 400, "x-portkey-metadata must be a JSON object"),
    ("metadata values not strings",
     {"x-portkey-provider": "openai", "x-portkey-metadata": '{"n": 1}'}, None, 400,
     "values must be strings"),
    ("timeout not a number",
     {"x-portkey-provider": "openai", "x-portkey-request-timeout": "soon"}, None, 400,
     "x-portkey-request-timeout must be whole milliseconds"),
    ("forward-headers listing portkey headers",
     {"x-portkey-provider": "openai", "x-portkey-forward-headers": "x-portkey-api-key"}, None,
     400, "may not list x-portkey-* headers"),
    ("config not JSON", {"x-portkey-config": "{broken"}, None, 400,
     "neither JSON nor a saved config id"),
    ("ollama without a host", {"x-portkey-provider": "ollama"}, None, 400,
     "needs a custom host"),
    ("runpod without an endpoint", {"x-portkey-provider": "runpod"}, None, 400,
     "needs x-portkey-runpod-endpoint-id"),
]


@pytest.mark.parametrize(("name", "headers", "content", "status", "message"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input(gateway, mock: MockUpstream, name, headers, content, status, message):
    response = post(gateway, headers, content)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"
    assert response.headers["x-portkey-request-id"]
    assert mock.requests == []


def test_oversized_body_is_413(start_gateway, mock: MockUpstream):
    gateway = start_gateway(max_body_bytes=1000)
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 2000}]}
    response = post(gateway, {"x-portkey-provider": "openai", **AUTH}, json=big)
    assert response.status_code == 413
    assert "exceeds the limit of 1000 bytes" in response.json()["error"]["message"]
    assert mock.requests == []


def test_oversized_chunked_body_is_413(start_gateway, mock: MockUpstream):
    gateway = start_gateway(max_body_bytes=1000)

    def chunks():
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}]}'

    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=chunks(),
                          headers={"x-portkey-provider": "openai"})
    assert response.status_code == 413
    assert mock.requests == []


def test_unknown_route_is_404_envelope(gateway):
    response = httpx.get(f"{gateway.url}/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_health_and_readiness(gateway):
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway.url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"

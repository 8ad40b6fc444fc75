"""What the pipeline restructure promised, seen from outside: a bug in an adapter is the
gateway's 502 (logged), never the client's 400; a body no adapter can take is the client's
400 naming the field, before any adapter or upstream; an unreachable upstream's 502 and a
model list with the backend down name the setting to check."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import httpx
import pytest

from providers import REGISTRY
from tests.support.mock_upstream import MockUpstream
from tests.support.servers import ThreadedServer

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, body: dict, provider: str = "openai") -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10, headers={
        "x-portkey-provider": provider, "authorization": "Bearer sk-test"})


def test_an_adapter_bug_is_a_logged_502_not_the_clients_400(
        gateway: ThreadedServer, mock: MockUpstream, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("choices")

    monkeypatch.setattr(REGISTRY["openai"], "build_request", broken)
    with caplog.at_level(logging.ERROR, logger="gateway"):
        response = post(gateway.url, CHAT)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "adapter_error"
    request_id = response.headers["x-portkey-request-id"]
    assert request_id in error["message"]
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log
    assert mock.requests == []


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "messages": "hello"}, "messages"),
    ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
    ({**CHAT, "tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     "messages[0].content[0].image_url"),
])
def test_a_body_no_adapter_can_take_is_a_400_naming_the_field(
        gateway: ThreadedServer, mock: MockUpstream, body: dict, param: str) -> None:
    response = post(gateway.url, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert mock.requests == []


def test_an_unreachable_upstream_names_the_setting_its_url_came_from(
        start_gateway: Callable[..., ThreadedServer]) -> None:
    gateway = start_gateway(
        provider_base_urls={"openai": f"http://127.0.0.1:{closed_port()}/v1"})
    response = post(gateway.url, CHAT)
    assert response.status_code == 502, response.text
    assert "GATEWAY_PROVIDER_BASE_URLS" in response.json()["error"]["message"]


def test_the_model_list_says_the_backend_is_down_and_what_to_check(
        start_gateway: Callable[..., ThreadedServer]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    gateway = start_gateway(vllm_url=url, provider_base_urls={})
    response = httpx.get(f"{gateway.url}/v1/models", timeout=10)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "backend_unavailable"
    assert url in error["message"] and "GATEWAY_VLLM_URL" in error["message"]


def test_the_model_list_comes_from_the_backend_when_it_is_up(
        gateway: ThreadedServer, mock: MockUpstream) -> None:
    response = httpx.get(f"{gateway.url}/v1/models", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "list"


def test_default_guardrail_headers_run_on_every_target(
        gateway: ThreadedServer, mock: MockUpstream) -> None:
    deny_secret = '[{"default.contains": {"operator": "none", "words": ["secret"]}, "deny": true}]'
    headers = {"x-portkey-provider": "openai", "authorization": "Bearer sk-test",
               "x-portkey-default-input-guardrails": deny_secret}
    body = {"model": "m", "messages": [{"role": "user", "content": "my secret"}]}
    refused = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers,
                         timeout=10)
    assert refused.status_code == 446, refused.text
    assert mock.requests == []
    body["messages"][0]["content"] = "nothing to hide"
    allowed = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers,
                         timeout=10)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["hook_results"]["before_request_hooks"][0]["verdict"] is True
    bad = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=10, headers={
        **headers, "x-portkey-default-input-guardrails": "[{\"default.nope\": {}}]"})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "x-portkey-default-input-guardrails"

"""What a client may add to a request bound for a stored secret's host (second review):
passthrough paths cannot climb out of the provider's API, forwarded headers cannot contest
what the gateway sets, and an upstream's made-up usage cannot write negative tokens."""

from __future__ import annotations

import httpx
import pytest

from gateway.usage.tokens import from_usage
from tests.support.keys import MESSAGES, create_api_key, create_virtual_key
from tests.support.mock_upstream import MockUpstream

VK_SECRET = "sk-forwarding-vk-secret-0000"


@pytest.mark.parametrize("path", [
    "..%2F..%2Fsecret",            # decoded by the server to ../../secret
    "chat/..%2F..%2F..%2Fadmin",
    "files%3Fexpand=1",            # a query of its own
    "files/%252e%252e/admin",      # decoded once here, once more upstream
    "%2E%2E/secret",               # dots the client left encoded
])
def test_a_passthrough_path_cannot_leave_the_providers_api(keyed_gateway, mock: MockUpstream,
                                                          path: str):
    gateway = keyed_gateway()
    api_key = create_api_key(gateway, name="app")
    vk = create_virtual_key(gateway, name="vk", provider="openai", key=VK_SECRET)
    response = httpx.post(f"{gateway.url}/v1/{path}", json={"model": "m"}, timeout=30,
                          headers={"x-portkey-api-key": api_key,
                                   "x-portkey-virtual-key": vk["slug"]})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_path"
    assert mock.requests == []


def test_ordinary_passthrough_paths_still_pass(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    api_key = create_api_key(gateway, name="app")
    vk = create_virtual_key(gateway, name="vk", provider="openai", key=VK_SECRET)
    response = httpx.post(f"{gateway.url}/v1/models/some-model:generate", json={}, timeout=30,
                          headers={"x-portkey-api-key": api_key,
                                   "x-portkey-virtual-key": vk["slug"]})
    assert response.status_code == 200, response.text
    assert [r.path for r in mock.requests] == ["models/some-model:generate"]


def test_forwarded_headers_cannot_contest_a_virtual_keys_own(keyed_gateway,
                                                           mock: MockUpstream):
    gateway = keyed_gateway()
    api_key = create_api_key(gateway, name="app")
    vk = create_virtual_key(gateway, name="vk", provider="openai", key=VK_SECRET,
                            options={"openai-project": "proj-admin"})
    response = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=30,
                          json={"model": "m", "messages": MESSAGES}, headers={
                              "x-portkey-api-key": api_key, "x-portkey-virtual-key": vk["slug"],
                              "x-portkey-forward-headers": "openai-project,authorization,x-trace",
                              "openai-project": "proj-attacker",
                              "authorization": "Bearer sk-attacker", "x-trace": "kept"})
    assert response.status_code == 200, response.text
    sent = mock.requests[0].headers
    assert sent["openai-project"] == "proj-admin"
    assert sent["authorization"] == f"Bearer {VK_SECRET}"
    assert sent["x-trace"] == "kept"  # forwarding itself still works


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": 5, "completion_tokens": -100_000_000, "total_tokens": -99_999_995},
    {"prompt_tokens": -5, "completion_tokens": 3},
    {"prompt_tokens": True, "completion_tokens": 3},
])
def test_made_up_usage_never_counts_negative(usage):
    tokens = from_usage(usage)
    assert tokens is None or (tokens.prompt >= 0 and tokens.completion >= 0)

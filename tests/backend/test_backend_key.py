"""Which key the gateway sends to `vllm`: the operator's backend key for the bundled backend."""

from __future__ import annotations

import httpx
from portkey_ai import createHeaders

from tests.support.mock_upstream import MockUpstream

BODY = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


def post(gateway_url: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway_url}/v1/chat/completions", json=BODY, headers=headers)


def test_backend_key_replaces_whatever_the_client_sends(start_gateway, mock: MockUpstream,
                                                        mock_url: str):
    gateway = start_gateway(vllm_url=f"{mock_url}/v1", provider_base_urls={},
                            vllm_api_key="sk-backend")
    for client_auth in ({}, {"Authorization": "Bearer OPENAI_API_KEY"}):
        assert post(gateway.url, **createHeaders(provider="vllm"), **client_auth).is_success
    assert [r.headers["authorization"] for r in mock.requests] == ["Bearer sk-backend"] * 2


def test_client_key_kept_for_a_vllm_of_its_own(start_gateway, mock: MockUpstream,
                                               mock_url: str):
    gateway = start_gateway(vllm_url="http://127.0.0.1:9/v1", provider_base_urls={},
                            vllm_api_key="sk-backend")
    headers = createHeaders(provider="vllm", custom_host=f"{mock_url}/v1")
    assert post(gateway.url, **headers, Authorization="Bearer sk-theirs").is_success
    assert mock.requests[0].headers["authorization"] == "Bearer sk-theirs"


def test_without_backend_key_the_client_key_passes(start_gateway, mock: MockUpstream,
                                                   mock_url: str):
    gateway = start_gateway(vllm_url=f"{mock_url}/v1", provider_base_urls={})
    assert post(gateway.url, **createHeaders(provider="vllm"),
                Authorization="Bearer sk-client").is_success
    assert mock.requests[0].headers["authorization"] == "Bearer sk-client"

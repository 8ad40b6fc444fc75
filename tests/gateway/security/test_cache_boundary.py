"""The response cache keeps the trust boundary (second review): an answer cached with one
credential, destination or set of options is never served to a request with another, and a
cache hit passes the same destination rules as a call."""

from __future__ import annotations

import httpx
import orjson

from tests.support.databases import admin_client
from tests.support.keys import MESSAGES, create_api_key
from tests.support.mock_upstream import MockUpstream

CACHED = {"cache": {"mode": "simple"}}
BODY = {"model": "m", "messages": MESSAGES}


def _post(gateway, config: dict, **headers: str) -> httpx.Response:
    sent = {"x-portkey-config": orjson.dumps(config).decode(), **headers}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=sent,
                      timeout=30)


def test_an_answer_cached_with_one_credential_is_not_served_to_another(
        keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    owner = create_api_key(gateway, name="owner")
    other = create_api_key(gateway, name="other")
    first = _post(gateway, {"provider": "openai", "api_key": "sk-owner-real-key", **CACHED},
                  **{"x-portkey-api-key": owner})
    assert first.headers["x-portkey-cache-status"] == "MISS"
    again = _post(gateway, {"provider": "openai", "api_key": "sk-owner-real-key", **CACHED},
                  **{"x-portkey-api-key": owner})
    assert again.headers["x-portkey-cache-status"] == "HIT"  # the cache does work
    bogus = _post(gateway, {"provider": "openai", "api_key": "bogus", **CACHED},
                  **{"x-portkey-api-key": other})
    assert bogus.headers["x-portkey-cache-status"] == "MISS"
    assert [r.headers["authorization"] for r in mock.requests] == [
        "Bearer sk-owner-real-key", "Bearer bogus"]


def test_options_are_part_of_the_cache_key(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    api_key = create_api_key(gateway, name="app")
    target = {"provider": "openai", "api_key": "sk-same", **CACHED}
    for project in ("proj-a", "proj-b"):
        answer = _post(gateway, {**target, "openai_project": project},
                       **{"x-portkey-api-key": api_key})
        assert answer.headers["x-portkey-cache-status"] == "MISS", project
    assert [r.headers.get("openai-project") for r in mock.requests] == ["proj-a", "proj-b"]


def test_a_cache_hit_passes_the_ssrf_guard_first(keyed_gateway, mock_url: str,
                                                 mock: MockUpstream):
    # The operator trusts no loopback host (the bundled backend's origin is elsewhere): a
    # saved config may reach the mock, a client's inline config may not, cached or not.
    gateway = keyed_gateway(trusted_hosts="", vllm_url="http://127.0.0.1:9/v1")
    api_key = create_api_key(gateway, name="app")
    host = {"provider": "openai", "api_key": "sk-same", "custom_host": f"{mock_url}/v1"}
    with admin_client(gateway) as admin:
        saved = admin.post("/admin/configs", json={
            "name": "internal", "config": {**host, **CACHED}}).json()
    warmed = httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, timeout=30,
                        headers={"x-portkey-api-key": api_key, "x-portkey-config": saved["slug"]})
    assert warmed.status_code == 200 and warmed.headers["x-portkey-cache-status"] == "MISS"
    refused = _post(gateway, {**host, **CACHED}, **{"x-portkey-api-key": api_key})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "invalid_custom_host"
    assert len(mock.requests) == 1

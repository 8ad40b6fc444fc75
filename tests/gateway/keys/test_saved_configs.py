"""A saved config (`x-portkey-config: pc-...`) routes exactly like its inline JSON.

Reading `x-portkey-config` belongs to the routing engine (issue 3): these pass once it is
merged and calls `resolver.saved_config` for a header that is not JSON.
"""

from __future__ import annotations

import orjson

from tests.support.databases import admin_client
from tests.support.keys import chat, create_api_key, create_virtual_key
from tests.support.mock_upstream import MockUpstream

CONFIG = {"provider": "openai", "api_key": "sk-config-held-key-1234"}


def test_saved_config_routes_like_its_json(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    api_key = create_api_key(gateway)
    with admin_client(gateway) as admin:
        saved = admin.post("/admin/configs", json={"name": "openai", "config": CONFIG}).json()
    inline = chat(gateway, api_key=api_key, config=orjson.dumps(CONFIG).decode())
    by_slug = chat(gateway, api_key=api_key, config=saved["slug"])
    by_id = chat(gateway, api_key=api_key, config=saved["id"])
    assert [r.status_code for r in (inline, by_slug, by_id)] == [200, 200, 200]
    assert [r.headers["x-portkey-provider"] for r in (inline, by_slug, by_id)] == ["openai"] * 3
    seen = [(r.path, r.headers["authorization"], r.body) for r in mock.requests]
    assert seen == [seen[0]] * 3
    assert seen[0][1] == "Bearer sk-config-held-key-1234"


def test_saved_config_naming_a_virtual_key(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    api_key = create_api_key(gateway)
    vk = create_virtual_key(gateway, key="sk-behind-the-config-5678")
    with admin_client(gateway) as admin:
        saved = admin.post("/admin/configs", json={
            "name": "vk", "config": {"virtual_key": vk["slug"]}}).json()
    assert chat(gateway, api_key=api_key, config=saved["slug"]).status_code == 200
    assert mock.requests[0].headers["authorization"] == "Bearer sk-behind-the-config-5678"


def test_unknown_saved_config_is_404(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    response = chat(gateway, api_key=create_api_key(gateway), config="pc-missing-000000")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "saved config 'pc-missing-000000' not found"


def test_saved_config_needs_a_gateway_api_key(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()  # no API key exists, so the gateway is open, but not to configs
    with admin_client(gateway) as admin:
        saved = admin.post("/admin/configs", json={"name": "c", "config": CONFIG}).json()
    response = chat(gateway, config=saved["slug"])
    assert response.status_code == 401
    assert "x-portkey-api-key" in response.json()["error"]["message"]
    assert not mock.requests

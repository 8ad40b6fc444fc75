"""Virtual keys: the provider secret is sealed at rest, used upstream, never shown."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from tests.support.databases import ADMIN_TOKEN, admin_client, query
from tests.support.keys import (
    MESSAGES,
    chat,
    create_api_key,
    create_virtual_key,
    sdk_client,
)
from tests.support.mock_upstream import MockUpstream

SECRET = "sk-planted-provider-secret-7f3a9c2e41"


def test_virtual_key_reaches_upstream_with_provider_auth(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    vk = create_virtual_key(gateway, key=SECRET)
    api_key = create_api_key(gateway)
    client = sdk_client(gateway, api_key=api_key, virtual_key=vk["slug"])
    completion = client.chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content
    streamed = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert streamed
    assert [r.headers["authorization"] for r in mock.requests] == [f"Bearer {SECRET}"] * 2
    assert not any(h.startswith("x-portkey") for h in mock.requests[0].headers)


def test_virtual_key_by_id_and_provider_options(keyed_gateway, mock: MockUpstream, mock_url):
    gateway = keyed_gateway()
    vk = create_virtual_key(gateway, key=SECRET, custom_host=f"{mock_url}/s/ok/v1",
                            options={"openai-organization": "org-1"})
    api_key = create_api_key(gateway)
    assert chat(gateway, api_key=api_key, virtual_key=vk["id"]).status_code == 200
    assert mock.requests[0].scenario == "ok"  # the virtual key's host, not the provider's


def test_database_holds_no_plaintext_secret(keyed_gateway, database_url: str):
    gateway = keyed_gateway()
    create_virtual_key(gateway, key=SECRET)
    api_key = create_api_key(gateway)
    rows = query(database_url, "SELECT * FROM virtual_keys") + \
        query(database_url, "SELECT * FROM api_keys")
    dump = repr(rows)
    assert len(rows) == 2
    assert SECRET not in dump and SECRET[3:-4] not in dump
    assert api_key not in dump and api_key[4:-4] not in dump
    (vk_row,) = query(database_url, "SELECT secret_key_id, secret_last4 FROM virtual_keys")
    assert vk_row["secret_last4"] == SECRET[-4:] and len(vk_row["secret_key_id"]) == 8


def test_planted_secret_absent_from_logs_and_admin_responses(
        keyed_gateway, mock: MockUpstream, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]):
    caplog.set_level(logging.DEBUG)
    gateway = keyed_gateway(log_level="debug")
    bodies: list[str] = []
    with admin_client(gateway) as admin:
        created = admin.post("/admin/virtual-keys", json={
            "name": "planted", "provider": "anyscale", "key": SECRET, "allowed_models": ["m"]})
        slug = created.json()["slug"]
        bodies += [created.text, admin.get("/admin/virtual-keys").text,
                   admin.get(f"/admin/virtual-keys/{slug}").text,
                   admin.put(f"/admin/virtual-keys/{slug}", json={"note": "n"}).text,
                   admin.get(f"/v1/virtual-keys/{slug}").text,
                   admin.post("/admin/virtual-keys", json={
                       "name": "bad", "provider": "nope", "key": SECRET}).text]
    api_key = create_api_key(gateway)
    ok = chat(gateway, api_key=api_key, virtual_key=slug)
    upstream_error = sdk_client(gateway, api_key=api_key, virtual_key=slug)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        upstream_error.chat.completions.create(model="other", messages=MESSAGES)
    bodies += [ok.text, str(denied.value.body)]
    captured = capsys.readouterr()
    assert ok.status_code == 200
    assert SECRET[-4:] in bodies[2]  # the last four are shown
    for text in [*bodies, caplog.text, captured.out, captured.err]:
        assert SECRET not in text


def test_model_outside_allowed_list_is_403(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    vk = create_virtual_key(gateway, key=SECRET, allowed_models=["m"])
    client = sdk_client(gateway, api_key=create_api_key(gateway), virtual_key=vk["slug"])
    client.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert "model 'gpt-4o' is not allowed for virtual key" in info.value.message
    assert len(mock.requests) == 1


def test_virtual_key_needs_a_gateway_api_key(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()  # no API key exists: the gateway is open, but not to virtual keys
    vk = create_virtual_key(gateway, key=SECRET)
    response = chat(gateway, virtual_key=vk["slug"])
    assert response.status_code == 401
    assert "x-portkey-api-key" in response.json()["error"]["message"]
    assert not mock.requests


def test_revoked_and_unknown_virtual_keys_are_401(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    vk = create_virtual_key(gateway, key=SECRET)
    api_key = create_api_key(gateway)
    with admin_client(gateway) as admin:
        assert admin.delete(f"/admin/virtual-keys/{vk['slug']}").status_code == 200
    revoked = chat(gateway, api_key=api_key, virtual_key=vk["slug"])
    unknown = chat(gateway, api_key=api_key, virtual_key="no-such-key")
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.json()["error"]["message"] == f"virtual key '{vk['slug']}' has been revoked"
    assert unknown.json()["error"]["message"] == "virtual key 'no-such-key' not found"
    assert not mock.requests


def test_without_master_key_virtual_keys_cannot_be_created(start_gateway, database_url: str):
    gateway = start_gateway(database_url=database_url, admin_token=ADMIN_TOKEN,
                            auto_migrate=True)
    response = httpx.post(f"{gateway.url}/admin/virtual-keys", json={
        "name": "x", "provider": "anyscale", "key": SECRET},
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 503
    assert "GATEWAY_MASTER_KEY" in response.json()["error"]["message"]
    assert SECRET not in response.text

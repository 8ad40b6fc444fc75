"""Gateway API keys on /v1/*: required once any exists; clear 401s for every bad key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.support.databases import admin_client
from tests.support.keys import chat, create_api_key
from tests.support.mock_upstream import MockUpstream
from tests.support.waiting import wait_until

PROVIDER = {"provider": "anyscale"}


def test_open_until_the_first_api_key_then_closed(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    assert chat(gateway, **PROVIDER).status_code == 200
    key = create_api_key(gateway)
    missing = chat(gateway, **PROVIDER)
    assert missing.status_code == 401
    assert missing.json()["error"] == {
        "message": "missing gateway API key: send it in the x-portkey-api-key header",
        "type": "authentication_error", "param": "x-portkey-api-key", "code": "missing_api_key"}
    assert chat(gateway, api_key=key, **PROVIDER).status_code == 200
    assert len(mock.requests) == 2


def test_required_by_setting_with_no_keys(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway(require_api_key=True)
    response = chat(gateway, **PROVIDER)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
    assert not mock.requests


def test_wrong_revoked_and_expired_keys_are_401(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    good = create_api_key(gateway)
    revoked = create_api_key(gateway)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    expired = create_api_key(gateway, expires_at=past)
    with admin_client(gateway) as admin:
        keys = {k["key"]: k["id"] for k in admin.get("/admin/api-keys").json()["data"]}
        revoked_id = next(i for masked, i in keys.items() if masked.endswith(revoked[-4:]))
        assert admin.delete(f"/admin/api-keys/{revoked_id}").status_code == 200
    answers = {name: chat(gateway, api_key=key, **PROVIDER) for name, key in {
        "wrong": good[:-1] + ("A" if good[-1] != "A" else "B"), "revoked": revoked,
        "expired": expired, "good": good}.items()}
    assert answers["good"].status_code == 200
    errors = {name: r.json()["error"] for name, r in answers.items() if name != "good"}
    assert {r.status_code for n, r in answers.items() if n != "good"} == {401}
    assert errors["wrong"]["message"] == "invalid gateway API key in x-portkey-api-key"
    assert errors["revoked"]["message"] == "gateway API key has been revoked"
    assert errors["expired"]["message"].startswith("gateway API key expired at ")
    assert [e["code"] for e in errors.values()] == [
        "invalid_api_key", "api_key_revoked", "api_key_expired"]
    assert len(mock.requests) == 1
    for response in answers.values():  # a presented key is never echoed back
        assert good not in response.text and revoked not in response.text


def test_revocation_reaches_another_worker_within_the_cache_ttl(keyed_gateway,
                                                               mock: MockUpstream):
    first = keyed_gateway(key_cache_ttl=0.5)
    second = keyed_gateway(key_cache_ttl=0.5)  # another process sharing the database
    key = create_api_key(first)
    assert chat(second, api_key=key, **PROVIDER).status_code == 200
    with admin_client(first) as admin:
        key_id = admin.get("/admin/api-keys").json()["data"][0]["id"]
        admin.delete(f"/admin/api-keys/{key_id}")
    assert chat(first, api_key=key, **PROVIDER).status_code == 401  # this process: at once
    assert wait_until(lambda: chat(second, api_key=key, **PROVIDER).status_code != 200,
                      timeout=20, interval=0.1), "revocation never reached the second worker"
    assert chat(second, api_key=key, **PROVIDER).json()["error"]["code"] == "api_key_revoked"


def test_admin_route_with_inference_only_key_is_403(keyed_gateway):
    gateway = keyed_gateway()
    inference = create_api_key(gateway, scopes=["inference"])
    admin_key = create_api_key(gateway, scopes=["admin"])
    for headers in ({"x-portkey-api-key": inference}, {"authorization": f"Bearer {inference}"}):
        response = httpx.get(f"{gateway.url}/admin/virtual-keys", headers=headers)
        assert response.status_code == 403
        assert response.json()["error"]["message"] == \
            "this gateway API key lacks the 'admin' scope"
    assert httpx.get(f"{gateway.url}/admin/api-keys",
                     headers={"x-portkey-api-key": admin_key}).status_code == 200
    none = httpx.get(f"{gateway.url}/admin/api-keys")
    wrong = httpx.get(f"{gateway.url}/admin/api-keys", headers={"authorization": "Bearer nope"})
    assert none.status_code == wrong.status_code == 401
    assert "GATEWAY_ADMIN_TOKEN" in none.json()["error"]["message"]


def test_key_store_down_is_503_not_500(start_gateway, mock: MockUpstream):
    from tests.support.servers import free_port
    gateway = start_gateway(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    response = chat(gateway, api_key="pgw-anything", **PROVIDER)
    admin = httpx.get(f"{gateway.url}/admin/api-keys",
                      headers={"authorization": "Bearer pgw-anything"})
    assert response.status_code == admin.status_code == 503
    assert response.json()["error"]["code"] == "key_store_unavailable"

"""Which keys may use what, black-box: an API key limited to virtual keys, saved configs and
models gets a 403 naming the key and the rule for anything else, whichever way it asks
(header, config target, override_params); an admin-only key runs no inference."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gateway.cli.main import main
from tests.support.databases import admin_client
from tests.support.keys import MESSAGES, chat, create_api_key, create_virtual_key
from tests.support.mock_upstream import MockUpstream

SECRET_A = "sk-virtual-key-a-secret-1111"
SECRET_B = "sk-virtual-key-b-secret-2222"


def _error(response: httpx.Response) -> dict:
    return dict(response.json()["error"])


def _config(value: object) -> str:
    return orjson.dumps(value).decode()


def _chat(gateway, model: str, **headers: str) -> httpx.Response:
    sent = {f"x-portkey-{name.replace('_', '-')}": value for name, value in headers.items()}
    return httpx.post(f"{gateway.url}/v1/chat/completions", headers=sent, timeout=30,
                      json={"model": model, "messages": MESSAGES})


def test_key_limited_to_virtual_key_a_cannot_use_b(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    vk_a = create_virtual_key(gateway, name="vk a", key=SECRET_A)
    vk_b = create_virtual_key(gateway, name="vk b", key=SECRET_B)
    api_key = create_api_key(gateway, name="team-a", allowed_virtual_keys=[vk_a["slug"]])

    assert chat(gateway, api_key=api_key, virtual_key=vk_a["slug"]).status_code == 200
    by_id = chat(gateway, api_key=api_key, virtual_key=vk_a["id"])
    assert by_id.status_code == 200  # listed by slug, used by id: the same key
    for response in (chat(gateway, api_key=api_key, virtual_key=vk_b["slug"]),
                     chat(gateway, api_key=api_key,
                          config=_config({"virtual_key": vk_b["slug"]})),
                     chat(gateway, api_key=api_key, config=_config({
                         "strategy": {"mode": "fallback"},
                         "targets": [{"virtual_key": vk_a["slug"]},
                                     {"virtual_key": vk_b["slug"]}]}))):
        assert response.status_code == 403, response.text
        error = _error(response)
        assert error["code"] == "virtual_key_not_allowed"
        assert f"API key 'team-a' may not use virtual key '{vk_b['slug']}'" in error["message"]
        assert "allowed_virtual_keys" in error["message"]
    sent = [r.headers["authorization"] for r in mock.requests]
    assert sent == [f"Bearer {SECRET_A}"] * 2


def test_key_limited_to_config_x_cannot_use_y(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    with admin_client(gateway) as admin:
        x = admin.post("/admin/configs", json={
            "name": "x", "config": {"provider": "openai", "api_key": "sk-x"}}).json()
        y = admin.post("/admin/configs", json={
            "name": "y", "config": {"provider": "openai", "api_key": "sk-y-held-secret"}}).json()
    api_key = create_api_key(gateway, name="team-x", allowed_configs=[x["slug"]])
    assert chat(gateway, api_key=api_key, config=x["slug"]).status_code == 200
    assert chat(gateway, api_key=api_key, config=x["id"]).status_code == 200
    response = chat(gateway, api_key=api_key, config=y["slug"])
    assert response.status_code == 403, response.text
    assert _error(response)["code"] == "config_not_allowed"
    assert f"API key 'team-x' may not use saved config '{y['slug']}'" in \
        _error(response)["message"]
    assert [r.headers["authorization"] for r in mock.requests] == ["Bearer sk-x"] * 2


def test_the_keys_own_default_config_is_always_allowed(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    with admin_client(gateway) as admin:
        default = admin.post("/admin/configs", json={
            "name": "d", "config": {"provider": "openai", "api_key": "sk-default"}}).json()
    api_key = create_api_key(gateway, allowed_configs=[],
                             defaults={"config_id": default["slug"]})
    assert chat(gateway, api_key=api_key).status_code == 200
    assert mock.requests[0].headers["authorization"] == "Bearer sk-default"
    assert chat(gateway, api_key=api_key, config=default["slug"]).status_code == 403


def test_key_limited_to_model_m1_cannot_ask_m2(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    api_key = create_api_key(gateway, name="m1-only", allowed_models=["m1"])
    assert _chat(gateway, "m1", api_key=api_key, provider="openai").status_code == 200
    via_override = _config({"provider": "openai",
                            "override_params": {"model": "m2"}})
    for response in (_chat(gateway, "m2", api_key=api_key, provider="openai"),
                     _chat(gateway, "m1", api_key=api_key, config=via_override)):
        assert response.status_code == 403, response.text
        error = _error(response)
        assert error["code"] == "model_not_allowed"
        assert "model 'm2' is not allowed for gateway API key 'm1-only'" in error["message"]
    # override_params can also make an allowed model out of a refused one
    to_m1 = _config({"provider": "openai", "override_params": {"model": "m1"}})
    assert _chat(gateway, "m2", api_key=api_key, config=to_m1).status_code == 200
    assert [r.body["model"] for r in mock.requests] == ["m1", "m1"]


# Passthrough names its model where no list can be checked: in the path, or nowhere.
PASSTHROUGH = [
    ("google", "/v1/models/gemini-ultra:generateContent", {"contents": []}),
    ("azure-openai", "/v1/deployments/big/chat/completions",
     {"model": "m1", "messages": MESSAGES}),
    ("openai", "/v1/images/generations", {"model": "m1", "prompt": "a cat"}),
]


@pytest.mark.parametrize(("provider", "path", "body"), PASSTHROUGH,
                         ids=[p[0] for p in PASSTHROUGH])
def test_model_limit_refuses_passthrough_routes(keyed_gateway, mock: MockUpstream, mock_url,
                                                provider, path, body):
    gateway = keyed_gateway()
    host = f"{mock_url}/v1"  # nothing leaves loopback, even if a refusal failed
    limited = create_api_key(gateway, name="m1-only", allowed_models=["m1"])
    free = create_api_key(gateway, name="free")
    vk = create_virtual_key(gateway, name="m1 vk", provider=provider, key=SECRET_A,
                            custom_host=host, allowed_models=["m1"])
    direct = {"x-portkey-provider": provider, "x-portkey-custom-host": host,
              "authorization": "Bearer sk-own"}
    for headers, holder in (({"x-portkey-api-key": limited, **direct}, "gateway API key"),
                            ({"x-portkey-api-key": free, "x-portkey-virtual-key": vk["slug"]},
                             "virtual key")):
        refused = httpx.post(f"{gateway.url}{path}", headers=headers, json=body, timeout=30)
        assert refused.status_code == 403, refused.text
        error = _error(refused)
        assert error["code"] == "model_not_allowed"
        assert f"passthrough requests are not allowed for {holder}" in error["message"]
        assert "cannot be checked against a model list" in error["message"]
    assert mock.requests == []
    # Without a model list, passthrough is relayed as before.
    allowed = httpx.post(f"{gateway.url}{path}", headers={"x-portkey-api-key": free, **direct},
                         json=body, timeout=30)
    assert allowed.status_code == 200, allowed.text
    assert len(mock.requests) == 1


def test_admin_only_key_runs_no_inference(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    admin_only = create_api_key(gateway, name="ops", scopes=["admin"])
    both = create_api_key(gateway, name="ops+", scopes=["admin", "inference"])
    response = chat(gateway, api_key=admin_only, provider="openai")
    assert response.status_code == 403, response.text
    error = _error(response)
    assert error["code"] == "inference_scope_required"
    assert "gateway API key 'ops' lacks the 'inference' scope" in error["message"]
    assert mock.requests == []
    assert chat(gateway, api_key=both, provider="openai").status_code == 200
    with admin_client(gateway, admin_only) as admin:  # its own job still works
        assert admin.get("/admin/api-keys").status_code == 200


def test_model_list_needs_an_admitted_key_like_every_v1_route(keyed_gateway,
                                                             mock: MockUpstream):
    gateway = keyed_gateway()
    admin_only = create_api_key(gateway, name="ops", scopes=["admin"])
    inference = create_api_key(gateway, name="app")
    anonymous = httpx.get(f"{gateway.url}/v1/models", timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    assert _error(anonymous)["code"] == "missing_api_key"
    refused = httpx.get(f"{gateway.url}/v1/models", timeout=30,
                        headers={"x-portkey-api-key": admin_only})
    assert refused.status_code == 403
    assert _error(refused)["code"] == "inference_scope_required"
    assert mock.requests == []
    listed = httpx.get(f"{gateway.url}/v1/models", timeout=30,
                       headers={"x-portkey-api-key": inference})
    assert listed.status_code == 200, listed.text


def test_allow_lists_round_trip_through_the_admin_api(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    with admin_client(gateway) as admin:
        created = admin.post("/admin/api-keys", json={
            "name": "scoped", "allowed_virtual_keys": ["vk-a", "vk-a"],
            "allowed_models": ["m1"]}).json()
        read = admin.get(f"/admin/api-keys/{created['id']}").json()
        assert (read["allowed_virtual_keys"], read["allowed_configs"], read["allowed_models"]) \
            == (["vk-a"], None, ["m1"])
        updated = admin.put(f"/admin/api-keys/{created['id']}", json={
            "allowed_models": None, "allowed_configs": ["pc-x"]}).json()
        assert (updated["allowed_configs"], updated["allowed_models"]) == (["pc-x"], None)
        bad = admin.post("/admin/api-keys", json={"name": "bad", "allowed_models": [""]})
        assert bad.status_code == 400, bad.text
    # the update reaches requests at once: no model limit any more
    assert _chat(gateway, "m9", api_key=created["key"], provider="openai").status_code == 200


def test_cli_creates_a_scoped_key(database_url, master_key, monkeypatch, capsys, keyed_gateway,
                                  mock: MockUpstream):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_MASTER_KEY", master_key)
    monkeypatch.setenv("GATEWAY_AUTO_MIGRATE", "true")
    code = main(["keys", "create", "--name", "cli", "--allowed-virtual-key", "vk-a",
                 "--allowed-config", "pc-x", "--allowed-model", "m1", "--allowed-model", "m2"])
    created = orjson.loads(capsys.readouterr().out)
    assert code == 0
    assert (created["allowed_virtual_keys"], created["allowed_configs"],
            created["allowed_models"]) == (["vk-a"], ["pc-x"], ["m1", "m2"])
    gateway = keyed_gateway()
    response = _chat(gateway, "m3", api_key=created["key"], provider="openai")
    assert response.status_code == 403 and _error(response)["code"] == "model_not_allowed"
    assert mock.requests == []


@pytest.mark.parametrize("scopes", [["inference"], ["admin", "inference"]])
def test_unrestricted_keys_are_unchanged(keyed_gateway, mock: MockUpstream, scopes):
    gateway = keyed_gateway()
    vk = create_virtual_key(gateway, key=SECRET_A)
    api_key = create_api_key(gateway, scopes=scopes)
    assert chat(gateway, api_key=api_key, virtual_key=vk["slug"]).status_code == 200
    assert _chat(gateway, "any-model", api_key=api_key, provider="openai").status_code == 200


def test_rendering_a_prompt_needs_the_right_to_run_it(keyed_gateway, mock: MockUpstream):
    from tests.gateway.prompts.test_prompt_api import call, create_prompt
    gateway = keyed_gateway()
    vk_a = create_virtual_key(gateway, name="vk a", key=SECRET_A)
    vk_b = create_virtual_key(gateway, name="vk b", key=SECRET_B)
    mine = create_prompt(gateway, provider=None, virtual_key=vk_a["slug"])["slug"]
    theirs = create_prompt(gateway, name="other", provider=None,
                           virtual_key=vk_b["slug"])["slug"]
    api_key = create_api_key(gateway, name="team-a", allowed_virtual_keys=[vk_a["slug"]])
    variables = {"variables": {"title": "x", "num_sections": 2}}
    assert call(gateway, mine, api_key, variables, action="render").status_code == 200
    refused = call(gateway, theirs, api_key, variables, action="render")
    assert refused.status_code == 403, refused.text
    assert _error(refused)["code"] == "virtual_key_not_allowed"
    assert "You write outlines" not in refused.text
    assert mock.requests == []


def test_listing_a_providers_models_counts_against_the_rate_limit(keyed_gateway,
                                                                  mock: MockUpstream):
    gateway = keyed_gateway()
    vk = create_virtual_key(gateway, name="vk a", key=SECRET_A, provider="openai")
    api_key = create_api_key(gateway, name="slow", rate_limits=[
        {"type": "requests", "unit": "rpm", "value": 2}])
    statuses = [httpx.get(f"{gateway.url}/v1/models", timeout=30, headers={
        "x-portkey-api-key": api_key, "x-portkey-virtual-key": vk["slug"]}).status_code
        for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert len(mock.requests) == 2

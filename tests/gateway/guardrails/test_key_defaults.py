"""Operators' default guardrails on API keys and virtual keys: set through the admin API or the
CLI, validated when saved, run on every request made with the key whatever config the client
sends, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import orjson
import pytest
from sqlalchemy import event

from gateway.cli.main import main
from gateway.errors import ServiceUnavailable
from gateway.settings import Settings
from gateway.store import api_keys, virtual_keys
from gateway.store.resolver import DatabaseResolver
from gateway.store.setup import open_key_store
from tests.support.databases import admin_client, query
from tests.support.keys import create_api_key, create_virtual_key
from tests.support.mock_upstream import STREAM_WORDS, MockUpstream
from tests.support.servers import ThreadedServer

PROVIDER_KEY = "sk-key-defaults-provider-key-9876"
NO_DROP = {"default.contains": {"words": ["DROP TABLE"], "operator": "none"}, "deny": True}
# The same kind of rule in the full form, on the answer: flags (246) every mock answer.
FLAG_MOCK = {"id": "no-mock", "type": "guardrail",
             "checks": [{"id": "default.contains",
                         "parameters": {"words": ["mock"], "operator": "none"}}]}
# A client config that names every guardrail list, each empty: it still cannot remove them.
TARGET_LISTS = {"before_request_hooks": [], "after_request_hooks": [], "input_guardrails": [],
                "output_guardrails": [], "input_mutators": [], "output_mutators": []}
EMPTY_LISTS = {**TARGET_LISTS, "default_input_guardrails": [], "default_output_guardrails": []}


def _chat(gateway: ThreadedServer, text: str, headers: dict[str, str],
          cfg: dict[str, Any] | None = None) -> httpx.Response:
    if cfg is not None:
        headers = {**headers, "x-portkey-config": json.dumps(cfg)}
    return httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers, timeout=30,
                      json={"model": "m", "messages": [{"role": "user", "content": text}]})


def _hook_ids(response: httpx.Response, phase: str) -> list[str]:
    return [hook["id"] for hook in response.json()["hook_results"][phase]]


def test_api_key_defaults_run_whatever_the_client_config(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    key = create_api_key(gateway, default_input_guardrails=[NO_DROP],
                         default_output_guardrails=[FLAG_MOCK])
    headers = {"x-portkey-api-key": key}
    own = {"provider": "openai", "api_key": PROVIDER_KEY, **EMPTY_LISTS}
    target = {"provider": "openai", "api_key": PROVIDER_KEY, **TARGET_LISTS}
    configs = {"no config": None, "empty lists": own,
               "a target with empty lists": {"strategy": {"mode": "fallback"},
                                             "targets": [target], **EMPTY_LISTS}}
    for name, cfg in configs.items():
        denied = _chat(gateway, "DROP TABLE users", headers | {
            "x-portkey-provider": "openai", "authorization": f"Bearer {PROVIDER_KEY}"}, cfg)
        assert denied.status_code == 446, name
        assert denied.json()["hook_results"]["before_request_hooks"][0]["deny"] is True
    assert mock.requests == []

    flagged = _chat(gateway, "select 1", headers, own)
    assert flagged.status_code == 246
    assert _hook_ids(flagged, "after_request_hooks") == ["no-mock"]
    assert len(mock.requests) == 1

    client = openai.OpenAI(api_key=PROVIDER_KEY, base_url=f"{gateway.url}/v1", max_retries=0,
                           default_headers={"x-portkey-api-key": key,
                                            "x-portkey-config": json.dumps(own)})
    with pytest.raises(openai.APIStatusError) as sdk_denied:
        client.chat.completions.create(model="m", messages=[
            {"role": "user", "content": "DROP TABLE users"}])
    assert sdk_denied.value.status_code == 446
    streamed = list(client.chat.completions.create(model="m", stream=True, messages=[
        {"role": "user", "content": "select 1"}]))
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == \
        "".join(STREAM_WORDS)
    assert streamed[0].model_extra["hook_results"]["before_request_hooks"][0]["verdict"]


def test_api_key_defaults_follow_the_client_config_own_hooks(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    key = create_api_key(gateway, default_input_guardrails=[NO_DROP])
    cfg = {"provider": "openai", "api_key": PROVIDER_KEY,
           "input_guardrails": [{"id": "client-hook", "default.wordCount": {"maxWords": 50}}]}
    response = _chat(gateway, "select 1", {"x-portkey-api-key": key}, cfg)
    assert response.status_code == 200
    assert _hook_ids(response, "before_request_hooks")[0] == "client-hook"
    assert len(_hook_ids(response, "before_request_hooks")) == 2


def test_admin_api_shows_updates_and_clears_api_key_defaults(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    key = create_api_key(gateway)
    headers = {"x-portkey-api-key": key, "x-portkey-provider": "openai",
               "authorization": f"Bearer {PROVIDER_KEY}"}
    assert _chat(gateway, "DROP TABLE users", headers).status_code == 200
    with admin_client(gateway) as admin:
        (row,) = admin.get("/admin/api-keys").json()["data"]
        assert (row["default_input_guardrails"], row["default_output_guardrails"]) == (None, None)
        updated = admin.patch(f"/admin/api-keys/{row['id']}",
                              json={"default_input_guardrails": [NO_DROP]})
        assert updated.status_code == 200
        assert updated.json()["default_input_guardrails"] == [NO_DROP]
        # the resolver's cache is dropped on the write: the next request runs them
        assert _chat(gateway, "DROP TABLE users", headers).status_code == 446
        cleared = admin.patch(f"/admin/api-keys/{row['id']}",
                              json={"default_input_guardrails": None})
        assert cleared.json()["default_input_guardrails"] is None
    assert _chat(gateway, "DROP TABLE users", headers).status_code == 200


def test_virtual_key_defaults_run_on_its_targets_only(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    vk = create_virtual_key(gateway, key=PROVIDER_KEY, defaultInputGuardrails=[NO_DROP],
                            default_output_guardrails=[FLAG_MOCK])
    with admin_client(gateway) as admin:
        shown = admin.get(f"/admin/virtual-keys/{vk['slug']}").json()
    assert shown["default_input_guardrails"] == [NO_DROP]
    assert shown["default_output_guardrails"] == [FLAG_MOCK]
    key = create_api_key(gateway)
    by_header = {"x-portkey-api-key": key, "x-portkey-virtual-key": vk["slug"]}
    assert _chat(gateway, "DROP TABLE users", by_header).status_code == 446
    target = {"virtual_key": vk["slug"], **TARGET_LISTS}
    assert _chat(gateway, "DROP TABLE users", {"x-portkey-api-key": key},
                 target | EMPTY_LISTS).status_code == 446
    assert mock.requests == []
    flagged = _chat(gateway, "select 1", {"x-portkey-api-key": key}, target)
    assert flagged.status_code == 246
    assert _hook_ids(flagged, "after_request_hooks") == ["no-mock"]

    # In a fallback, the key's hooks deny its own target; the next target has no such key.
    fallback = {"strategy": {"mode": "fallback"}, "targets": [
        target, {"provider": "openai", "api_key": PROVIDER_KEY,
                 "override_params": {"model": "plain"}}]}
    mock.reset()
    moved = _chat(gateway, "DROP TABLE users", {"x-portkey-api-key": key}, fallback)
    assert moved.status_code == 200
    assert [r.body["model"] for r in mock.requests] == ["plain"]


@pytest.mark.parametrize("resource", ["api-keys", "virtual-keys"])
@pytest.mark.parametrize("lists,param,says", [
    ({"default_input_guardrails": [{"default.contans": {"words": ["x"], "operator": "any"}}]},
     "default_input_guardrails[0].default.contans", "did you mean 'default.contains'?"),
    ({"default_output_guardrails": [{"regexMatch": {"rule": "(a)\\1"}}]},
     "default_output_guardrails[0].regexMatch.rule", "invalid regular expression"),
    ({"default_input_guardrails": [{"wordCount": {"maxWords": "ten"}}]},
     "default_input_guardrails[0].wordCount.maxWords", "integer"),
    ({"default_input_guardrails": [{"type": "guardrail", "checks": []}]},
     "default_input_guardrails[0].checks", "non-empty list"),
    ({"default_input_guardrails": [{"contains": {"words": ["x"], "operator": "any"}}] * 17},
     "default_input_guardrails", "over the cap of 16"),
])
def test_invalid_defaults_are_400_naming_the_path(keyed_gateway, resource, lists, param, says):
    gateway = keyed_gateway()
    fields = {"name": "k"} | ({"provider": "openai", "key": PROVIDER_KEY}
                              if resource == "virtual-keys" else {})
    with admin_client(gateway) as admin:
        created = admin.post(f"/admin/{resource}", json=fields | lists)
        assert created.status_code == 400, created.text
        error = created.json()["error"]
        assert (error["param"], error["code"]) == (param, "invalid_guardrails")
        assert param in error["message"] and says in error["message"]
        ok = admin.post(f"/admin/{resource}", json=fields)
        assert ok.status_code == 201
        patched = admin.patch(f"/admin/{resource}/{ok.json()['id']}", json=lists)
        assert patched.status_code == 400
        assert patched.json()["error"]["param"] == param
        assert len(admin.get(f"/admin/{resource}").json()["data"]) == 1


def test_a_list_that_is_not_a_list_is_400(keyed_gateway):
    gateway = keyed_gateway()
    with admin_client(gateway) as admin:
        response = admin.post("/admin/virtual-keys", json={
            "name": "k", "provider": "openai", "key": PROVIDER_KEY,
            "defaultOutputGuardrails": {"contains": {"words": ["x"], "operator": "any"}}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "defaultOutputGuardrails"


@pytest.fixture
def cli(database_url: str, master_key: str, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_MASTER_KEY", master_key)
    monkeypatch.setenv("GATEWAY_AUTO_MIGRATE", "true")

    def run(*argv: str) -> tuple[int, Any, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, orjson.loads(out) if out else None, err
    return run


def test_cli_sets_defaults_on_keys(cli, keyed_gateway, mock: MockUpstream, monkeypatch):
    monkeypatch.setenv("PROVIDER_SECRET", PROVIDER_KEY)
    code, key, _ = cli("keys", "create", "--name", "guarded",
                       "--input-guardrail", json.dumps(NO_DROP))
    assert code == 0 and key["default_input_guardrails"] == [NO_DROP]
    code, vk, _ = cli("virtual-keys", "create", "--name", "guarded-vk", "--provider", "openai",
                      "--secret-env", "PROVIDER_SECRET",
                      "--output-guardrail", json.dumps(FLAG_MOCK),
                      "--output-guardrail", '{"wordCount": {"maxWords": 100}}')
    assert code == 0
    gateway = keyed_gateway()
    headers = {"x-portkey-api-key": key["key"], "x-portkey-virtual-key": vk["slug"]}
    assert _chat(gateway, "DROP TABLE users", headers).status_code == 446
    flagged = _chat(gateway, "select 1", headers)
    assert flagged.status_code == 246
    assert _hook_ids(flagged, "after_request_hooks")[0] == "no-mock"
    assert len(_hook_ids(flagged, "after_request_hooks")) == 2


def test_cli_refuses_bad_guardrails_in_one_line(cli):
    code, _, err = cli("keys", "create", "--name", "k", "--input-guardrail", "{")
    assert code == 1 and err.startswith("error: --input-guardrail is not valid JSON")
    code, _, err = cli("keys", "create", "--name", "k", "--output-guardrail",
                       '{"wordCount": {"maxWord": 3}}')
    assert code == 1 and err.count("\n") == 1
    assert "default_output_guardrails[0].wordCount.maxWord: unknown parameter" in err
    assert cli("keys", "list")[1]["total"] == 0


# --- the resolver: parsed once per cache fill, and fail-closed on what it cannot run --------


@pytest.fixture
async def store_and_resolver(database_url: str, master_key: str):
    settings = Settings(_env_file=None, database_url=database_url, master_key=master_key,
                        auto_migrate=True, key_cache_ttl=60)
    db, store, resolver = await open_key_store(settings)
    yield db, store, resolver
    await db.close()


async def test_defaults_are_parsed_once_per_cache_fill(store_and_resolver):
    db, store, resolver = store_and_resolver
    assert isinstance(resolver, DatabaseResolver)
    _, key = await api_keys.create(store, {"name": "a", "default_input_guardrails": [NO_DROP]})
    vk = await virtual_keys.create(store, {"name": "v", "provider": "openai", "key": "sk-x1",
                                           "default_output_guardrails": [FLAG_MOCK]})
    first = await resolver.authenticate(key)
    first_vk = await resolver.virtual_key(vk.slug)
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    for _ in range(20):
        principal = await resolver.authenticate(key)
        assert principal is not None and principal.default_hooks is first.default_hooks
        assert (await resolver.virtual_key(vk.slug)).default_hooks is first_vk.default_hooks
    assert statements == []
    assert [h.checks[0].id for h in first.default_hooks.before] == ["default.contains"]
    assert first.default_hooks.before[0].deny and not first.default_hooks.after
    assert [h.id for h in first_vk.default_hooks.after] == ["no-mock"]


async def test_a_stored_list_it_cannot_run_refuses_the_key(store_and_resolver, database_url,
                                                           caplog):
    _, store, resolver = store_and_resolver
    row, key = await api_keys.create(store, {"name": "a"})
    planted = [{"webhook": {"webhookURL": "https://hooks.example.com/x",
                            "headers": {"authorization": "Bearer planted-hook-secret"},
                            "timeout": "soon"}}]
    await _write(database_url, row.id, planted)
    resolver.invalidate()
    with pytest.raises(ServiceUnavailable) as refused:
        await resolver.authenticate(key)
    assert refused.value.code == "invalid_key_guardrails"
    assert "planted-hook-secret" not in refused.value.message
    assert "default_input_guardrails[0].webhook.timeout" in caplog.text
    assert "planted-hook-secret" not in caplog.text


async def _write(url: str, key_id: str, value: Any) -> None:
    await asyncio.to_thread(query, url, "UPDATE api_keys SET default_input_guardrails = "
                            ":value WHERE id = :id", value=json.dumps(value), id=key_id)

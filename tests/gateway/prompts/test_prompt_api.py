"""Prompt templates over REST: admin writes, then /v1/prompts/{id}/completions and /render."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from tests.support.databases import admin_client, query
from tests.support.keys import create_api_key, create_virtual_key
from tests.support.mock_upstream import MockUpstream
from tests.support.servers import ThreadedServer

SECRET = "sk-prompt-provider-secret-7777"
TEMPLATE = [
    {"role": "system", "content": "You write outlines. Use {{num_sections}} sections."},
    {"role": "user", "content": "Outline: {{title}}{{#audience}} for {{audience}}{{/audience}}"},
]


def create_prompt(gateway: ThreadedServer, **fields: Any) -> dict[str, Any]:
    body = {"name": "Outline writer", "messages": TEMPLATE, "model": "mistral-7b",
            "parameters": {"temperature": 0.7, "max_tokens": 100}, "provider": "anyscale",
            **fields}
    with admin_client(gateway) as admin:
        response = admin.post("/admin/prompts", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def call(gateway: ThreadedServer, ref: str, api_key: str | None, body: dict[str, Any],
         action: str = "completions", provider_key: str | None = None,
         **headers: str) -> httpx.Response:
    """A prompt call with the given x-portkey-* headers (by suffix)."""
    sent = {f"x-portkey-{k.replace('_', '-')}": v for k, v in headers.items()}
    if provider_key is not None:
        sent["authorization"] = f"Bearer {provider_key}"
    if api_key is not None:
        sent["x-portkey-api-key"] = api_key
    return httpx.post(f"{gateway.url}/v1/prompts/{ref}/{action}", json=body, headers=sent,
                      timeout=30)


@pytest.fixture
def setup(keyed_gateway) -> tuple[ThreadedServer, str]:
    gateway = keyed_gateway()
    return gateway, create_api_key(gateway)


def test_completion_renders_and_overrides_reach_the_upstream(setup, mock: MockUpstream):
    gateway, key = setup
    slug = create_prompt(gateway)["slug"]
    assert slug.startswith("pp-outline-writer-")
    response = call(gateway, slug, key, {
        "variables": {"title": "AI & <teachers>", "num_sections": 5},
        "max_tokens": 250, "presence_penalty": 0.2}, provider_key="sk-caller")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    sent = mock.requests[-1]
    assert sent.path == "chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-caller"  # a stored provider: caller's key
    assert sent.body == {
        "model": "mistral-7b", "temperature": 0.7, "max_tokens": 250, "presence_penalty": 0.2,
        "messages": [
            {"role": "system", "content": "You write outlines. Use 5 sections."},
            # no HTML escaping; the unset section variable renders nothing
            {"role": "user", "content": "Outline: AI & <teachers>"}]}


def test_render_returns_the_body_without_calling_upstream(setup, mock: MockUpstream):
    gateway, key = setup
    slug = create_prompt(gateway)["slug"]
    response = call(gateway, slug, key, {"variables": {"title": "T", "num_sections": "3",
                                                      "audience": "kids"}, "top_p": 0.5},
                    action="render")
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "data": {
        "model": "mistral-7b", "temperature": 0.7, "max_tokens": 100, "top_p": 0.5,
        "messages": [{"role": "system", "content": "You write outlines. Use 3 sections."},
                     {"role": "user", "content": "Outline: T for kids"}]}}
    assert mock.requests == []


def test_streaming_prompt_completion(setup, mock: MockUpstream):
    gateway, key = setup
    slug = create_prompt(gateway)["slug"]
    with httpx.stream("POST", f"{gateway.url}/v1/prompts/{slug}/completions", timeout=30,
                      headers={"x-portkey-api-key": key},
                      json={"variables": {"title": "T", "num_sections": 2},
                            "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [orjson.loads(line[6:]) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert mock.requests[-1].body["stream"] is True


def test_versions_pinning_and_publishing(setup, mock: MockUpstream):
    gateway, key = setup
    slug = create_prompt(gateway)["slug"]
    v1_text = "You write outlines. Use 4 sections."
    with admin_client(gateway) as admin:
        updated = admin.put(f"/admin/prompts/{slug}", json={
            "messages": [{"role": "user", "content": "v2 {{title}}"}]}).json()
        assert (updated["latest_version"], updated["published_version"]) == (2, 1)
    variables = {"variables": {"title": "T", "num_sections": 4}}

    def first_message(ref: str) -> str:
        response = call(gateway, ref, key, variables)
        assert response.status_code == 200, response.text
        return str(mock.requests[-1].body["messages"][0]["content"])

    assert first_message(slug) == v1_text  # the published version
    assert first_message(f"{slug}@2") == "v2 T"
    assert first_message(f"{slug}@latest") == "v2 T"
    assert first_message(f"{slug}@1") == v1_text
    with admin_client(gateway) as admin:
        published = admin.post(f"/admin/prompts/{slug}/publish", json={"version": 2}).json()
        assert published["published_version"] == 2
        versions = admin.get(f"/admin/prompts/{slug}/versions").json()["data"]
        assert [(v["version"], v["published"]) for v in versions] == [(1, False), (2, True)]
        # the update kept the stored model, parameters and route
        assert versions[1]["model"] == "mistral-7b" and versions[1]["provider"] == "anyscale"
    assert first_message(slug) == "v2 T"


@pytest.mark.parametrize(("ref", "body", "status", "code", "words"), [
    ("pp-nope-000000", {"variables": {}}, 404, "prompt_not_found", "pp-nope-000000"),
    ("{slug}@9", {"variables": {}}, 404, "prompt_version_not_found", "no version 9"),
    ("{slug}@x", {"variables": {}}, 400, "invalid_prompt_version", "'x'"),
    ("{slug}", {"variables": {"num_sections": 3}}, 400, "missing_variables", "title"),
    ("{slug}", {}, 400, "missing_variables", "num_sections, title"),
    ("{slug}", {"variables": {"title": {"text": "x"}, "num_sections": True}}, 400,
     "invalid_variable_type", "num_sections (got boolean), title (got object)"),
    ("{slug}", {"variables": {"title": ["a"], "num_sections": None}}, 400,
     "invalid_variable_type", "num_sections (got null), title (got array)"),
    ("{slug}", {"variables": "title=x"}, 400, "invalid_variables", "JSON object"),
    ("{slug}", {"variables": {}, "messages": []}, 400, "invalid_field", "messages"),
])
@pytest.mark.parametrize("action", ["completions", "render"])
def test_errors(setup, mock: MockUpstream, ref, body, status, code, words, action):
    gateway, key = setup
    slug = create_prompt(gateway)["slug"]
    response = call(gateway, ref.format(slug=slug), key, body, action=action)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"]
    assert mock.requests == []


def test_prompts_need_a_gateway_api_key(setup, mock: MockUpstream):
    gateway, _ = setup
    slug = create_prompt(gateway)["slug"]
    response = call(gateway, slug, None, {"variables": {"title": "T", "num_sections": 1}})
    assert response.status_code == 401
    assert call(gateway, slug, "pgw-wrong", {}).status_code == 401
    assert mock.requests == []


def wait_for_rows(url: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = query(url, "SELECT * FROM request_logs ORDER BY created_at")
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_stored_virtual_key_routes_and_the_log_row_names_prompt_and_version(
        keyed_gateway, mock: MockUpstream, database_url: str):
    gateway = keyed_gateway(usage_flush_interval_s=0.05)
    key = create_api_key(gateway)
    vk = create_virtual_key(gateway, key=SECRET)["slug"]
    slug = create_prompt(gateway, provider=None, virtual_key=vk)["slug"]
    with admin_client(gateway) as admin:
        admin.put(f"/admin/prompts/{slug}", json={"model": "mistral-8x7b"})  # version 2
    # The stored virtual key wins over the caller's provider and Authorization.
    ok = call(gateway, f"{slug}@2", key, {"variables": {"title": "T", "num_sections": 1}},
              provider="openai", provider_key="sk-ignored")
    assert ok.status_code == 200, ok.text
    assert mock.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    bad = call(gateway, slug, key, {"variables": {}})
    assert bad.status_code == 400
    rows = {row["id"]: row for row in wait_for_rows(database_url, 2)}
    good_row = rows[ok.headers["x-portkey-request-id"]]
    bad_row = rows[bad.headers["x-portkey-request-id"]]
    assert (good_row["prompt_id"], good_row["prompt_version"]) == (slug, 2)
    assert (good_row["status_code"], good_row["model"]) == (200, "mistral-8x7b")
    assert good_row["virtual_key_id"] is not None and good_row["endpoint"] == "chat/completions"
    assert (bad_row["prompt_id"], bad_row["prompt_version"], bad_row["status_code"]) == (
        slug, 1, 400)


def test_stored_saved_config_routes_unless_the_caller_sends_a_config(setup, mock: MockUpstream):
    gateway, key = setup
    vk = create_virtual_key(gateway, key=SECRET)["slug"]
    with admin_client(gateway) as admin:
        config = admin.post("/admin/configs", json={
            "name": "via vk", "config": {"virtual_key": vk, "cache": {"mode": "simple"},
                                         "override_params": {"seed": 7}}}).json()["slug"]
    slug = create_prompt(gateway, provider=None, config=config)["slug"]
    variables = {"variables": {"title": "T", "num_sections": 1}}
    first = call(gateway, slug, key, variables)
    assert first.status_code == 200 and first.headers["x-portkey-cache-status"] == "MISS"
    assert mock.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    assert mock.requests[-1].body["seed"] == 7
    # The rendered body is what the cache keys on: the same variables hit, others miss.
    again = call(gateway, slug, key, variables)
    assert again.headers["x-portkey-cache-status"] == "HIT" and len(mock.requests) == 1
    other = call(gateway, slug, key, {"variables": {"title": "U", "num_sections": 1}})
    assert other.headers["x-portkey-cache-status"] == "MISS" and len(mock.requests) == 2
    own = orjson.dumps({"provider": "openai", "api_key": "sk-callers-own"}).decode()
    assert call(gateway, slug, key, variables, config=own).status_code == 200
    assert mock.requests[-1].headers["authorization"] == "Bearer sk-callers-own"
    assert "seed" not in mock.requests[-1].body


def test_admin_lifecycle_and_bad_templates(setup):
    gateway, key = setup
    created = create_prompt(gateway, publish=False)
    slug = created["slug"]
    assert created["object"] == "prompt" and created["version"] == 1
    unpublished = call(gateway, slug, key, {"variables": {"title": "T", "num_sections": 1}},
                       action="render")
    assert unpublished.status_code == 404
    assert unpublished.json()["error"]["code"] == "prompt_not_published"
    with admin_client(gateway) as admin:
        assert admin.put(f"/admin/prompts/{slug}/makeDefault", json={}).status_code == 200
        read = admin.get(f"/admin/prompts/{created['id']}").json()
        assert read["published_version"] == 1 and read["messages"] == TEMPLATE
        renamed = admin.patch(f"/admin/prompts/{slug}", json={"name": "Renamed"}).json()
        assert (renamed["name"], renamed["latest_version"]) == ("Renamed", 1)
        assert admin.get("/v1/prompts").json()["total"] == 1
        assert admin.get(f"/prompts/{slug}/versions/1").json()["version"] == 1
        bad = {
            "messages.0.content": admin.post("/admin/prompts", json={
                "name": "x", "messages": [{"role": "user", "content": "{{#open}} no end"}]}),
            "messages": admin.post("/admin/prompts", json={"name": "x"}),
            "provider": admin.post("/admin/prompts", json={
                "name": "x", "messages": TEMPLATE, "provider": "nope"}),
            "parameters.stream": admin.post("/admin/prompts", json={
                "name": "x", "messages": TEMPLATE, "parameters": {"stream": True}}),
        }
        for param, response in bad.items():
            assert response.status_code == 400, param
            assert response.json()["error"]["param"] == param, response.text
        partial = admin.post("/admin/prompts", json={
            "name": "x", "messages": [{"role": "user", "content": "{{> other}}"}]})
        assert "partials are not supported" in partial.json()["error"]["message"]
        two_routes = admin.post("/admin/prompts", json={
            "name": "x", "messages": TEMPLATE, "provider": "openai", "virtual_key": "v"})
        assert "at most one of" in two_routes.json()["error"]["message"]
        assert admin.delete(f"/admin/prompts/{slug}").status_code == 200
        assert admin.get(f"/admin/prompts/{slug}").status_code == 404
    gone = call(gateway, slug, key, {"variables": {"title": "T", "num_sections": 1}})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "prompt_not_found"


def test_unrouted_prompt_uses_the_request_headers_and_limits_apply(keyed_gateway,
                                                                   mock: MockUpstream):
    gateway = keyed_gateway()
    key = create_api_key(gateway, rate_limits=[{"type": "requests", "unit": "rpm", "value": 1}])
    slug = create_prompt(gateway, provider=None)["slug"]
    variables = {"variables": {"title": "T", "num_sections": 1}}
    first = call(gateway, slug, key, variables, provider="anyscale", provider_key="sk-own")
    assert first.status_code == 200, first.text
    assert mock.requests[-1].headers["authorization"] == "Bearer sk-own"
    second = call(gateway, slug, key, variables, provider="anyscale", provider_key="sk-own")
    assert second.status_code == 429 and len(mock.requests) == 1

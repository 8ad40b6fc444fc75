"""Attack 8 (misroute by typo) and the config half of attack 6 (fan-out), black-box.

A config key the gateway does not know is a 400 naming it, at use and when saved; a config
over the caps is refused before any upstream call; one request makes at most
MAX_UPSTREAM_ATTEMPTS upstream calls, retries and fallbacks counted together.
"""

from __future__ import annotations

import orjson
import pytest

from gateway.cli.main import main
from gateway.routing.shape import MAX_TARGETS_PER_NODE, MAX_UPSTREAM_ATTEMPTS
from tests.support.databases import admin_client
from tests.support.keys import chat, create_api_key
from tests.support.mock_upstream import MockUpstream

PLANTED = "sk-planted-in-the-config-0042"
# The attacker's host: never contacted, since the config is refused before any connection.
ATTACKER = "http://127.0.0.2:9/v1"


def _config(value: object) -> str:
    return orjson.dumps(value).decode()


def _error(response) -> str:
    return str(response.json()["error"]["message"])


def test_typo_in_custom_host_is_400_naming_it_and_nothing_is_sent(keyed_gateway,
                                                                  mock: MockUpstream):
    gateway = keyed_gateway()
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "api_key": PLANTED, "custom_hst": ATTACKER}]}
    response = chat(gateway, api_key=create_api_key(gateway), config=_config(config))
    assert response.status_code == 400, response.text
    message = _error(response)
    assert "targets[0].custom_hst: unknown key; did you mean 'custom_host'?" in message
    assert PLANTED not in response.text
    assert mock.requests == []


@pytest.mark.parametrize(("config", "expected"), [
    ({"provider": "openai", "retries": {"attempts": 3}},
     "retries: unknown key; did you mean 'retry'?"),
    ({"provider": "openai", "retry": {"attempts": 2, "on_status": [500]}},
     "retry.on_status: unknown key; did you mean 'on_status_codes'?"),
    ({"provider": "openai", "input_guardrails": [{"default.contain": {"words": ["x"]}}]},
     "input_guardrails[0].default.contain: unknown check 'default.contain'; did you mean "
     "'default.contains'?"),
    ({"provider": "openai", "before_request_hooks": [{"id": "pg-1"}]},
     "before_request_hooks[0].checks: must be a non-empty list of checks"),
    ({"provider": "openai", "aws_region": "us-east-1"},
     "aws_region: not an option of provider 'openai'"),
    ({"strategy": {"mode": "fallback"}, "resource_name": "r",
      "targets": [{"provider": "openai"}]},
     "resource_name: a provider option belongs on a target"),
])
def test_unknown_or_unsupported_keys_are_400(keyed_gateway, mock: MockUpstream, config,
                                             expected):
    gateway = keyed_gateway()
    response = chat(gateway, api_key=create_api_key(gateway), config=_config(config))
    assert response.status_code == 400, response.text
    assert expected in _error(response)
    assert response.json()["error"]["code"] == "invalid_config"
    assert mock.requests == []


def test_known_provider_options_still_route(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    config = {"provider": "openai", "api_key": "sk-1", "openai_project": "proj_1",
              "strict_open_ai_compliance": True}
    response = chat(gateway, api_key=create_api_key(gateway), config=_config(config))
    assert response.status_code == 200, response.text
    assert mock.requests[0].headers["openai-project"] == "proj_1"


def test_bad_config_is_never_saved_by_the_admin_api(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    bad = {"provider": "openai", "custom_hst": ATTACKER}
    with admin_client(gateway) as admin:
        for path in ("/admin/configs", "/configs"):  # the admin API and the SDK's path
            response = admin.post(path, json={"name": "typo", "config": bad})
            assert response.status_code == 400, response.text
            assert "custom_hst: unknown key; did you mean 'custom_host'?" in _error(response)
            assert response.json()["error"]["param"] == "config"
        assert admin.get("/admin/configs").json()["total"] == 0
        saved = admin.post("/admin/configs", json={"name": "ok",
                                                   "config": {"provider": "openai"}}).json()
        for method in ("PUT", "PATCH"):
            response = admin.request(method, f"/admin/configs/{saved['slug']}",
                                     json={"config": {"provider": "openai", "retries": 2}})
            assert response.status_code == 400, response.text
            assert "retries: unknown key; did you mean 'retry'?" in _error(response)
        stored = admin.get(f"/admin/configs/{saved['slug']}").json()
        assert stored["config"] == {"provider": "openai"}
        assert stored["version_id"] == saved["version_id"]


def test_bad_config_is_never_saved_by_the_cli(database_url, master_key, monkeypatch, capsys,
                                              keyed_gateway):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_MASTER_KEY", master_key)
    monkeypatch.setenv("GATEWAY_AUTO_MIGRATE", "true")
    code = main(["configs", "create", "--name", "typo",
                 "--json", _config({"provider": "openai", "custom_hst": ATTACKER})])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "custom_hst: unknown key; did you mean 'custom_host'?" in err
    assert main(["configs", "list"]) == 0
    assert orjson.loads(capsys.readouterr().out)["total"] == 0


def test_ten_thousand_targets_are_refused_before_any_upstream_call(keyed_gateway,
                                                                   mock: MockUpstream):
    gateway = keyed_gateway()
    huge = {"strategy": {"mode": "fallback"}, "targets": [{}] * 10_000}
    response = chat(gateway, api_key=create_api_key(gateway), config=_config(huge))
    assert response.status_code == 400, response.text
    assert f"10000 targets, over the cap of {MAX_TARGETS_PER_NODE}" in _error(response)
    assert response.json()["error"]["code"] == "config_too_large"
    saved = {"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai"}] * 10_000}
    with admin_client(gateway) as admin:
        response = admin.post("/admin/configs", json={"name": "huge", "config": saved})
    assert response.status_code == 400, response.text
    assert "over the cap" in _error(response)
    assert mock.requests == []


def test_attempts_across_fallback_and_retries_stop_at_the_cap(keyed_gateway, mock_url: str,
                                                              mock: MockUpstream):
    # Every target fails with a retryable 500: 30 targets x (1 + 3 retries) would be 120 calls.
    gateway = keyed_gateway(
        provider_base_urls={"openai": f"{mock_url}/s/status-500/v1"},
        retry_backoff_base_ms=1, retry_backoff_max_ms=1, circuit_failure_threshold=1000)
    config = {"strategy": {"mode": "fallback"}, "retry": {"attempts": 3},
              "targets": [{"provider": "openai", "api_key": "sk-1"}] * 30}
    response = chat(gateway, api_key=create_api_key(gateway), config=_config(config))
    assert response.status_code == 500, response.text
    assert len(mock.requests) == MAX_UPSTREAM_ATTEMPTS
    body = response.json()
    assert f"gave up: the request made its {MAX_UPSTREAM_ATTEMPTS} upstream attempts" \
        in body["error"]["message"]
    assert body["attempts_exhausted"] is True

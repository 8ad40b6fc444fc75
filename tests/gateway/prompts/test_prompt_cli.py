"""`python -m gateway prompts ...`: create, update, publish, list, show, versions, delete."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gateway.cli.main import main
from tests.support.keys import create_api_key
from tests.support.mock_upstream import MockUpstream


@pytest.fixture
def cli(database_url: str, master_key: str, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_MASTER_KEY", master_key)
    monkeypatch.setenv("GATEWAY_AUTO_MIGRATE", "true")

    def run(*argv: str) -> tuple[int, dict | None, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, orjson.loads(out) if out else None, err
    return run


def test_cli_prompt_lifecycle_serves_what_it_stored(cli, keyed_gateway, mock: MockUpstream,
                                                    tmp_path):
    (tmp_path / "m.json").write_text('[{"role": "user", "content": "Hi {{who}}"}]')
    code, made, err = cli("prompts", "create", "--name", "greeter", "--messages-file",
                          str(tmp_path / "m.json"), "--model", "m1", "--provider", "openai",
                          "--parameters-json", '{"max_tokens": 9}')
    assert code == 0, err
    slug = made["slug"]
    code, updated, _ = cli("prompts", "update", slug, "--text", "Bye {{who}}")
    assert code == 0 and (updated["latest_version"], updated["published_version"]) == (2, 1)
    assert cli("prompts", "publish", slug, "--version", "2")[1]["published_version"] == 2
    assert cli("prompts", "list")[1]["total"] == 1
    shown = cli("prompts", "show", slug)[1]
    assert shown["messages"] == [{"role": "user", "content": "Bye {{who}}"}]
    assert shown["parameters"] == {"max_tokens": 9} and shown["provider"] == "openai"
    assert [v["version"] for v in cli("prompts", "versions", slug)[1]["data"]] == [1, 2]

    gateway = keyed_gateway()
    response = httpx.post(f"{gateway.url}/v1/prompts/{slug}/completions", timeout=30,
                          headers={"x-portkey-api-key": create_api_key(gateway),
                                   "authorization": "Bearer sk-x"},
                          json={"variables": {"who": "Ann"}})
    assert response.status_code == 200, response.text
    assert mock.requests[-1].body == {"model": "m1", "max_tokens": 9,
                                      "messages": [{"role": "user", "content": "Bye Ann"}]}
    assert cli("prompts", "delete", slug)[1]["status"] == "deleted"
    assert cli("prompts", "list")[1]["total"] == 0


def test_cli_prompt_errors_are_one_line(cli):
    failures = {
        "json": cli("prompts", "create", "--name", "x", "--messages-json", "["),
        "template": cli("prompts", "create", "--name", "x", "--text", "{{#a}}"),
        "unknown": cli("prompts", "show", "pp-missing"),
        "version": cli("prompts", "publish", "pp-missing", "--version", "3"),
    }
    for name, (code, out, err) in failures.items():
        assert code == 1 and out is None, name
        assert err.startswith("error: ") and err.count("\n") == 1, name
    assert "not valid JSON" in failures["json"][2]
    assert "invalid mustache template" in failures["template"][2]
    assert "prompt 'pp-missing' not found" in failures["unknown"][2]

"""The key-store CLI: what it prints, what it stores, and how it fails."""

from __future__ import annotations

import orjson
import pytest

from gateway.cli.main import main
from tests.support.databases import query
from tests.support.keys import chat
from tests.support.mock_upstream import MockUpstream

SECRET = "sk-cli-provider-secret-4321"


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


def test_cli_creates_keys_that_work(cli, keyed_gateway, monkeypatch, mock: MockUpstream,
                                    database_url: str, tmp_path):
    monkeypatch.setenv("ANYSCALE_API_KEY", SECRET)
    code, key, _ = cli("keys", "create", "--name", "team-a", "--scope", "inference",
                       "--expires", "30d")
    assert code == 0 and key["key"].startswith("pgw-")
    code, vk, _ = cli("virtual-keys", "create", "--name", "anyscale-prod", "--provider",
                      "anyscale", "--secret-env", "ANYSCALE_API_KEY")
    assert code == 0 and vk["slug"] == "anyscale-prod"
    (tmp_path / "c.json").write_text('{"provider": "openai"}')
    code, config, _ = cli("configs", "create", "--name", "c", "--file", str(tmp_path / "c.json"))
    assert code == 0 and config["slug"].startswith("pc-c-")
    listed = {name: cli(name, "list")[1]["total"] for name in ("keys", "virtual-keys", "configs")}
    assert listed == {"keys": 1, "virtual-keys": 1, "configs": 1}
    assert SECRET not in repr(cli("virtual-keys", "list"))

    gateway = keyed_gateway()
    assert chat(gateway, api_key=key["key"], virtual_key="anyscale-prod").status_code == 200
    assert mock.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert cli("keys", "revoke", key["id"])[1]["status"] == "revoked"
    assert cli("virtual-keys", "revoke", "anyscale-prod")[1]["status"] == "revoked"
    assert query(database_url, "SELECT status FROM api_keys") == [{"status": "revoked"}]


def test_cli_errors_are_one_line_and_non_zero(cli, monkeypatch):
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    failures = {
        "unset": cli("virtual-keys", "create", "--name", "x", "--provider", "anyscale",
                     "--secret-env", "NO_SUCH_VAR"),
        "provider": cli("virtual-keys", "create", "--name", "x", "--provider", "nope"),
        "json": cli("configs", "create", "--name", "x", "--json", "{"),
        "expires": cli("keys", "create", "--name", "x", "--expires", "soon"),
        "revoke": cli("keys", "revoke", "no-such-id"),
    }
    for name, (code, out, err) in failures.items():
        assert code == 1 and out is None and err.startswith("error: "), name
        assert err.count("\n") == 1, name
    assert "NO_SUCH_VAR is unset" in failures["unset"][2]
    assert "unknown provider 'nope'" in failures["provider"][2]
    assert "api key 'no-such-id' not found" in failures["revoke"][2]


def test_cli_without_master_key_refuses_virtual_keys(cli, monkeypatch):
    monkeypatch.delenv("GATEWAY_MASTER_KEY")
    monkeypatch.setenv("ANYSCALE_API_KEY", SECRET)
    code, _, err = cli("virtual-keys", "create", "--name", "x", "--provider", "anyscale",
                       "--secret-env", "ANYSCALE_API_KEY")
    assert code == 1 and "GATEWAY_MASTER_KEY" in err


def test_cli_virtual_key_allowed_custom_hosts(cli):
    code, vk, _ = cli("virtual-keys", "create", "--name", "own-proxy", "--provider", "openai",
                      "--allowed-custom-host", "https://llm.example.com",
                      "--allowed-custom-host", "http://10.0.0.5:8000/")
    assert code == 0
    listed = {row["slug"]: row for row in cli("virtual-keys", "list")[1]["data"]}
    assert listed[vk["slug"]]["allowed_custom_hosts"] == ["https://llm.example.com:443",
                                                          "http://10.0.0.5:8000"]
    code, out, err = cli("virtual-keys", "create", "--name", "x", "--provider", "openai",
                         "--allowed-custom-host", "https://llm.example.com/v1")
    assert code == 1 and out is None and "must be an origin" in err

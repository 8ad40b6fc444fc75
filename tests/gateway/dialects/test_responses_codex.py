"""The Codex CLI (npm `@openai/codex`, installed by scripts/test into .npm-tools/) answering
through the gateway: `codex exec` with a custom model provider on the Responses wire API,
routed to a chat-only upstream. HOME and CODEX_HOME are temporary; update checks, analytics,
feedback, telemetry and plugin sync are off; every proxy variable points at a loopback proxy
that refuses and records everything, so the test fails if Codex contacts anything but the
gateway (which NO_PROXY exempts)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.mock_upstream import STREAM_WORDS, MockUpstream
from tests.support.refusing_proxy import RefusingProxy
from tests.support.servers import ThreadedServer

CODEX = Path(__file__).resolve().parents[3] / ".npm-tools/node_modules/.bin/codex"
PROVIDER_KEY_VARIABLE = "GATEWAY_TEST_PROVIDER_KEY"


def codex_config(gateway: ThreadedServer) -> str:
    return f"""
model = "mock-model"
model_provider = "gateway"
check_for_update_on_startup = false

[model_providers.gateway]
name = "AI gateway"
base_url = "{gateway.url}/v1"
wire_api = "responses"
env_key = "{PROVIDER_KEY_VARIABLE}"
http_headers = {{ "x-portkey-provider" = "anyscale" }}
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"

[features]
plugins = false
"""


@pytest.fixture
def codex() -> Path:
    if not CODEX.exists():
        message = f"{CODEX} is missing: ./scripts/test installs @openai/codex"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CODEX


def test_codex_exec_answers_through_the_gateway(codex: Path, gateway: ThreadedServer,
                                                mock: MockUpstream, tmp_path: Path):
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    (home / ".codex" / "config.toml").write_text(codex_config(gateway))
    with RefusingProxy() as proxy:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
               "CODEX_HOME": str(home / ".codex"), "TERM": "dumb",
               PROVIDER_KEY_VARIABLE: "sk-provider-key", **proxy.environment()}
        done = subprocess.run(
            [str(codex), "exec", "--skip-git-repo-check", "Say hello to the gateway."],
            cwd=work, env=env, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "".join(STREAM_WORDS) in done.stdout
    assert proxy.seen == [], f"Codex tried to reach past the gateway: {proxy.seen}"
    turns = [r for r in mock.requests if r.path == "chat/completions"]
    assert len(turns) == 1
    sent = turns[0]
    assert sent.body["model"] == "mock-model" and sent.body["stream"] is True
    assert sent.headers["authorization"] == "Bearer sk-provider-key"
    assert sent.body["messages"][-1] == {"role": "user", "content": "Say hello to the gateway."}
    assert all(t["type"] == "function" for t in sent.body["tools"])  # built-ins dropped

"""Claude Code itself (npm `@anthropic-ai/claude-code`, installed by scripts/test into
.npm-tools/) answering through the gateway: `claude -p` with ANTHROPIC_BASE_URL at a real
gateway, x-portkey headers in ANTHROPIC_CUSTOM_HEADERS routing it to the OpenAI-compatible
loopback mock, telemetry and other non-essential traffic off, HOME a temporary folder.

Anything it sends anywhere but the gateway goes to a loopback proxy (HTTPS_PROXY /
HTTP_PROXY) that records and refuses it: the test fails if the proxy saw anything."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mock_upstream import STREAM_WORDS, MockUpstream
from tests.support.refusing_proxy import RefusingProxy
from tests.support.servers import ThreadedServer

CLAUDE = Path(__file__).resolve().parents[3] / ".npm-tools/node_modules/.bin/claude"


@pytest.fixture
def claude() -> Path:
    if not CLAUDE.exists():
        message = f"{CLAUDE} is missing: ./scripts/test installs @anthropic-ai/claude-code"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CLAUDE


@pytest.fixture
def proxy() -> Iterator[RefusingProxy]:
    with RefusingProxy() as refusing:
        yield refusing


def test_claude_code_print_mode_answers_through_the_gateway(
        claude: Path, gateway: ThreadedServer, mock: MockUpstream, proxy: RefusingProxy,
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TERM": "dumb",
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": "sk-dummy-provider-key",
        "ANTHROPIC_MODEL": "mock-model", "ANTHROPIC_SMALL_FAST_MODEL": "mock-model",
        "ANTHROPIC_CUSTOM_HEADERS": "x-portkey-provider: openai\nx-portkey-trace-id: cc-run",
        # Nothing but the model call: no telemetry, error reports, update checks or the like.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1", "DISABLE_COST_WARNINGS": "1",
        "CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL": "1",
        # Anything else goes to the refusing proxy; the gateway is reached directly.
        **proxy.environment(),
    }
    done = subprocess.run([str(claude), "-p", "Say hello to the gateway."], env=env, cwd=home,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert done.stdout.decode().strip() == "".join(STREAM_WORDS)
    assert proxy.seen == [], f"Claude Code reached past the gateway: {proxy.seen}"

    (sent,) = [r for r in mock.requests if r.path == "chat/completions"]
    body = sent.body
    # What Claude Code sends that a chat target cannot take never reaches it.
    assert not {"thinking", "context_management", "output_config", "top_k", "metadata",
                "cache_control", "system"} & set(body)
    assert body["model"] == "mock-model" and body["stream"] is True
    # `system` first; its system message inside `messages` stays where it was sent.
    roles = [message["role"] for message in body["messages"]]
    assert roles[0] == "system" and "user" in roles and set(roles) <= {"system", "user"}
    assert len(body["tools"]) >= 10
    assert all(tool["type"] == "function" for tool in body["tools"])
    assert sent.headers["authorization"] == "Bearer sk-dummy-provider-key"
    assert not any(name.startswith(("anthropic-", "x-api-key", "x-portkey"))
                   for name in sent.headers)

"""`scripts/stack`: the compose topology without Docker serves OpenAI SDK calls end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import pytest
from portkey_ai import createHeaders
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli.main import build_parser
from tests.support.mock_upstream import STREAM_WORDS
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL",
                              "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/13"  # a db number of its own


def require(url: str, default_port: int) -> None:
    """Skip when the service is down, except in CI, where that is a failure."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or default_port), timeout=2).close()
    except OSError:
        message = f"{parts.hostname}:{parts.port or default_port} does not answer"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def has_migrate() -> bool:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    return "migrate" in commands


@pytest.fixture
def stack(tmp_path):
    require(DATABASE_URL, 5432)
    require(REDIS_URL, 6379)
    port, mock_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(STACK_DIR=str(tmp_path / "stack"), STACK_PYTHON=sys.executable,
               DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, GATEWAY_PORT=str(port),
               STACK_MOCK_PORT=str(mock_port), GATEWAY_LOG_LEVEL="warning")
    # Until the key store (issue 4) brings `python -m gateway migrate`, skip that one step.
    args = [] if has_migrate() else ["--no-migrate"]
    started = subprocess.run([str(ROOT / "scripts/stack"), *args], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=180)
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        assert f"http://127.0.0.1:{port}/v1" in started.stdout
        yield f"http://127.0.0.1:{port}"
    finally:
        stopped = subprocess.run([str(ROOT / "scripts/stack"), "--stop"], env=env, cwd=ROOT,
                                 capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert not list((tmp_path / "stack").glob("*.pid"))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz")


def test_stack_serves_a_stream_and_a_plain_request(stack):
    client = openai.OpenAI(api_key="sk-test", base_url=f"{stack}/v1", max_retries=0,
                           default_headers=createHeaders(provider="openai"))
    messages = [{"role": "user", "content": "hello stack"}]
    reply = client.chat.completions.create(model="mock-model", messages=messages)
    assert reply.choices[0].message.content == "".join(STREAM_WORDS)
    assert reply.usage.prompt_tokens == 2
    chunks = list(client.chat.completions.create(model="mock-model", messages=messages,
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(
        STREAM_WORDS)
    metrics = text_string_to_metric_families(httpx.get(f"{stack}/metrics").text)
    served = sum(s.value for family in metrics for s in family.samples
                 if s.name == "gateway_requests_total" and s.labels["status"] == "200")
    assert served == 2  # summed across the two workers

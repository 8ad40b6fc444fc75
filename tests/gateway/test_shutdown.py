"""SIGTERM: the gateway stops accepting, lets in-flight streams finish, and exits 0."""

from __future__ import annotations

import signal
import socket
import sqlite3

import httpx
import orjson
import pytest

from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.mock_upstream import STREAM_WORDS
from tests.support.waiting import wait_until


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def served(tmp_path, mock_url):
    process = GatewayProcess(gateway_env(tmp_path, mock_url, GATEWAY_SHUTDOWN_GRACE_S="60"),
                             cwd=tmp_path)
    yield process.start()
    process.stop()


def test_sigterm_lets_a_long_stream_finish_then_exits_0(served, mock, mock_url, tmp_path):
    # 400 ms between chunks: the stream is still running well after SIGTERM arrives.
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi there"}]}
    headers = {"x-portkey-provider": "openai", "authorization": "Bearer sk-test",
               "x-portkey-custom-host": f"{mock_url}/s/slow-400/v1"}
    events: list[bytes] = []
    with httpx.Client(timeout=30) as client, client.stream(
            "POST", f"{served.url}/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status_code == 200
        request_id = response.headers["x-portkey-request-id"]
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                events.append(line[6:].encode())
                break
        served.process.send_signal(signal.SIGTERM)
        # New connections are turned away ...
        assert wait_until(lambda: refuses_connections(served.port), timeout=20,
                          interval=0.05), served.output()
        events.extend(line[6:].encode() for line in lines if line.startswith("data: "))
    # ... while the stream in flight ran to its end.
    assert events[-1] == b"[DONE]", events
    chunks = [orjson.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(STREAM_WORDS)
    assert served.process.wait(timeout=60) == 0, served.output()
    # The usage writer was flushed before exit: the stream's row is in the database.
    with sqlite3.connect(tmp_path / "gateway.sqlite3") as db:
        row = db.execute("SELECT status_code, completion_tokens, stream FROM request_logs "
                         "WHERE id = ?", (request_id,)).fetchone()
    assert row == (200, len(STREAM_WORDS), 1)


def test_sigterm_when_idle_exits_0_promptly(served):
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0, served.output()

"""Stored responses across replicas: two `python -m gateway serve` processes on one Postgres.

A response made on one replica is chained from, retrieved and replayed on the other at once;
and because its answer goes out only once its row is committed, a replica killed (SIGKILL,
no shutdown) right after answering has lost nothing the client holds. Under the earlier
write-behind store the killed replica's last rows were lost, and the second test failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.databases import require_postgres
from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.mock_upstream import STREAM_WORDS, MockUpstream

ANSWER = "".join(STREAM_WORDS)
HEADERS = {"authorization": "Bearer sk-replicas", "x-portkey-provider": "anyscale"}


@pytest.fixture
def replicas(tmp_path: Path, mock_url: str) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    database = require_postgres()
    started: list[GatewayProcess] = []
    try:
        for name in ("a", "b"):  # one after the other: the first migrates the new schema
            folder = tmp_path / name
            folder.mkdir()
            started.append(GatewayProcess(gateway_env(
                folder, mock_url, DATABASE_URL=database, GATEWAY_AUTO_MIGRATE="true"),
                cwd=folder).start())
        yield started[0], started[1]
    finally:
        for process in started:
            process.stop()


def create(gateway: GatewayProcess, text: str, previous: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"model": "m", "input": text}
    if previous is not None:
        body["previous_response_id"] = previous
    return httpx.post(f"{gateway.url}/v1/responses", json=body, headers=HEADERS, timeout=30)


def streamed_id(gateway: GatewayProcess, text: str) -> str:
    """Stream a response and return its id as soon as `response.completed` arrives."""
    body = {"model": "m", "input": text, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/responses", json=body, headers=HEADERS,
                      timeout=30) as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines():
            if line.startswith("data: "):
                event = orjson.loads(line[6:])
                if event["type"] == "response.completed":
                    return str(event["response"]["id"])
    raise AssertionError("the stream ended without response.completed")


def history(mock: MockUpstream) -> list[tuple[str, Any]]:
    """The messages of the last request the upstream got."""
    return [(m["role"], m["content"]) for m in mock.requests[-1].body["messages"]]


def test_a_response_made_on_one_replica_is_chained_from_the_other_at_once(
        replicas: tuple[GatewayProcess, GatewayProcess], mock: MockUpstream):
    a, b = replicas
    first = create(a, "Hello from a")
    assert first.status_code == 200, first.text
    chained = create(b, "And on b", previous=first.json()["id"])
    assert chained.status_code == 200, chained.text
    assert history(mock) == [("user", "Hello from a"), ("assistant", ANSWER),
                             ("user", "And on b")]
    retrieved = httpx.get(f"{b.url}/v1/responses/{first.json()['id']}", headers=HEADERS)
    assert retrieved.status_code == 200 and retrieved.json() == first.json()

    streamed = streamed_id(b, "Streamed on b")
    back = create(a, "Back on a", previous=streamed)
    assert back.status_code == 200, back.text
    assert history(mock)[0] == ("user", "Streamed on b")


def killed(gateway: GatewayProcess) -> None:
    """SIGKILL: no shutdown, nothing flushed."""
    assert gateway.process is not None
    gateway.process.kill()
    gateway.process.wait()


def test_a_replica_killed_right_after_answering_has_lost_nothing(
        replicas: tuple[GatewayProcess, GatewayProcess], mock: MockUpstream):
    a, b = replicas
    made = create(a, "Answered, then killed")
    assert made.status_code == 200
    killed(a)
    chained = create(b, "Still there?", previous=made.json()["id"])
    assert chained.status_code == 200, chained.text
    assert history(mock)[0] == ("user", "Answered, then killed")

    a.start()
    streamed = streamed_id(a, "Streamed, then killed")
    killed(a)
    chained = create(b, "Still there?", previous=streamed)
    assert chained.status_code == 200, chained.text
    assert history(mock)[0] == ("user", "Streamed, then killed")

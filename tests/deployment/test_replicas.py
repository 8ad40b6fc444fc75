"""Three replicas behind nginx behave as one gateway through a crash and a rolling restart.

Three `python -m gateway serve` processes share the test Postgres and Redis behind nginx
(bench/nginx.py: what its configuration retries, and why). 3,000 chat requests at concurrency
50 go through nginx while one replica is SIGKILLed and restarted, then the other two are rolled
with SIGTERM, one at a time, each restarted before the next. Then:

- the rpm limit of one API key and the concurrency limit of another held across the replicas;
- no client saw a 5xx or a broken connection, except requests in flight at the SIGKILL (they
  may fail, and are counted); every SIGTERMed replica exited 0;
- every answered request has exactly one usage row once the replicas have stopped, the killed
  replica's included: its crash-safe journal (gateway/usage/journal.py) is replayed when it
  starts again.

No fixed sleeps: the crash and the rolls happen at fixed points of the request sequence, and
no request far past one is sent before that replica is back.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bench import nginx as balancer
from bench.harness import mock_upstream
from gateway.settings import Settings
from tests.support.databases import ADMIN_TOKEN, query, require_postgres
from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.limited_keys import sdk_limits
from tests.support.mock_upstream import MockUpstream
from tests.support.redis import SharedRedis

REQUESTS = 3000
CONCURRENCY = 50
RPM = 40
MAX_CONCURRENT = 3
SLOW_MS = 300  # the concurrency-limited key's upstream: slow enough to pile up
# At which request each event starts, on which replica; no request past `at + HOLD` is sent
# until that replica answers again.
EVENTS = ((300, 0, "kill"), (1200, 1, "term"), (2100, 2, "term"))
HOLD = 700
# Every tenth request in three: an rpm-limited key, a concurrency-limited key, a stream.
KINDS = {3: "rpm", 5: "stream", 7: "concurrent"}


@dataclass
class Outcome:
    index: int
    kind: str
    sent: float
    done: float = 0.0
    status: int | None = None
    error: str | None = None  # a broken connection, or a stream cut short
    request_id: str | None = None

    @property
    def answered(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass
class Replica:
    process: GatewayProcess
    killed_at: float | None = None
    exit_codes: list[int] | None = None

    def kill(self) -> None:
        assert self.process.process is not None
        self.killed_at = time.monotonic()
        self.process.process.send_signal(signal.SIGKILL)
        self.process.process.wait(10)

    def terminate(self) -> int:
        """SIGTERM, and wait for the drain and the exit."""
        assert self.process.process is not None
        self.process.process.send_signal(signal.SIGTERM)
        return self.process.process.wait(60)


class Sequence:
    """Hands out request numbers, holding them back while a replica is still down."""

    def __init__(self) -> None:
        self.next = 0
        self.reached = {at: asyncio.Event() for at, _, _ in EVENTS}
        self.back = [asyncio.Event() for _ in EVENTS]

    async def take(self) -> int | None:
        index = self.next
        if index >= REQUESTS:
            return None
        self.next += 1
        if index in self.reached:
            self.reached[index].set()
        for (at, _, _), back in zip(EVENTS, self.back, strict=True):
            if index >= at + HOLD:
                await back.wait()
        return index


@pytest.fixture
def stack(tmp_path: Path, mock: MockUpstream, mock_url: str,
          shared_redis: SharedRedis) -> Iterator[dict[str, Any]]:
    if balancer.binary() is None:
        pytest.fail("nginx is not installed: ./scripts/test installs it (apt-get install nginx)")
    database = require_postgres()
    with mock_upstream() as fast:
        base = fast.removesuffix("/v1")
        env = gateway_env(tmp_path, base, DATABASE_URL=database, REDIS_URL=shared_redis.url)
        migrated = subprocess.run([sys.executable, "-m", "gateway", "migrate"], env=env,
                                  capture_output=True, check=False)
        assert migrated.returncode == 0, migrated.stderr.decode()
        replicas = []
        for n in range(3):
            folder = tmp_path / f"replica-{n}"  # its spool and journal, kept across restarts
            folder.mkdir()
            replicas.append(Replica(GatewayProcess(gateway_env(
                folder, base, DATABASE_URL=database, REDIS_URL=shared_redis.url,
                GATEWAY_REDIS_PREFIX=shared_redis.prefix, GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN,
                GATEWAY_PROVIDER_BASE_URLS=orjson.dumps({
                    "openai": fast, "groq": f"{mock_url}/s/slow-{SLOW_MS}/v1"}).decode(),
                GATEWAY_CIRCUIT_SHARED="true", GATEWAY_SHUTDOWN_GRACE_S="20",
                # A killed replica's slots free themselves this soon (a request takes 0.3 s).
                GATEWAY_CONCURRENCY_SLOT_TTL="10"), cwd=folder)))
        try:
            _in_parallel(lambda r: r.process.start(), replicas)
            with balancer.nginx([r.process.port for r in replicas],
                                access_log=True) as (port, folder):
                yield {"url": f"http://127.0.0.1:{port}", "replicas": replicas,
                       "database": database, "nginx_log": folder / "access.log", "mock": mock}
        finally:
            _in_parallel(lambda r: r.process.stop(), replicas)


def _in_parallel(action: Any, replicas: list[Replica]) -> None:
    async def run() -> None:
        await asyncio.gather(*(asyncio.to_thread(action, r) for r in replicas))
    asyncio.run(run())


def _issue_keys(url: str) -> dict[str, str]:
    limits = {"load": {}, "rpm": {"rpm": RPM}, "concurrent": {"max_concurrent": MAX_CONCURRENT}}
    keys = {}
    with httpx.Client(base_url=url, timeout=30,
                      headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        for name, spec in limits.items():
            response = admin.post("/admin/api-keys", json={
                "name": name, "scopes": ["inference"], **sdk_limits(spec)})
            assert response.status_code == 201, response.text
            keys[name] = response.json()["key"]
    return keys


async def _request(client: httpx.AsyncClient, keys: dict[str, str], index: int) -> Outcome:
    kind = KINDS.get(index % 10, "plain")
    headers = {"x-portkey-api-key": keys.get(kind, keys["load"]),
               "x-portkey-provider": "groq" if kind == "concurrent" else "openai",
               "authorization": "Bearer sk-upstream"}
    body: dict[str, Any] = {"model": "bench-model",
                            "messages": [{"role": "user", "content": f"request {index}"}]}
    if kind == "stream":
        body |= {"stream": True, "mock_chunks": 8, "mock_delay_ms": 25}
    outcome = Outcome(index, kind, time.monotonic())
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body,
                                 headers=headers) as response:
            text = await response.aread()
        outcome.status = response.status_code
        outcome.request_id = response.headers.get("x-portkey-request-id")
        if kind == "stream" and response.status_code == 200 and b"[DONE]" not in text:
            outcome.error = "stream cut short"
    except httpx.TransportError as exc:
        outcome.error = type(exc).__name__
    outcome.done = time.monotonic()
    return outcome


async def _events(sequence: Sequence, replicas: list[Replica]) -> None:
    for (at, which, action), back in zip(EVENTS, sequence.back, strict=True):
        await sequence.reached[at].wait()
        replica = replicas[which]
        if action == "kill":
            await asyncio.to_thread(replica.kill)
        else:
            code = await asyncio.to_thread(replica.terminate)
            replica.exit_codes = [*(replica.exit_codes or []), code]
        await asyncio.to_thread(replica.process.start)
        back.set()


async def _load(url: str, keys: dict[str, str], replicas: list[Replica]) -> list[Outcome]:
    sequence = Sequence()
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker() -> None:
            while (index := await sequence.take()) is not None:
                outcomes.append(await _request(client, keys, index))

        events = asyncio.create_task(_events(sequence, replicas))
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        await events
    return outcomes


def _rows(database: str, ids: list[str]) -> Counter[str]:
    found = query(database, "SELECT id, count(*) AS n FROM request_logs WHERE id = ANY(:ids) "
                  "GROUP BY id", ids=ids)
    return Counter({row["id"]: row["n"] for row in found})


def _most_in_a_minute(answered: list[Outcome]) -> int:
    """The most answered requests certainly admitted within one 60-second window: each was
    admitted between its sending and its answer (all of them, for a run under a minute)."""
    return max((sum(t <= o.sent and o.done <= t + 60 for o in answered)
                for t in (o.sent for o in answered)), default=0)


def _missing_rows(missing: list[Outcome], killed_at: float, replicas: list[Replica],
                  nginx_log: Path) -> str:
    """Which replica answered each request that has no row, and when, from nginx's log."""
    ports = {f"127.0.0.1:{r.process.port}": n for n, r in enumerate(replicas)}
    lines = nginx_log.read_text().splitlines()
    found = []
    for o in missing[:5]:
        line = next((x for x in lines if str(o.request_id) in x), "")
        where = [f"replica {ports[a]}" for a in ports if a in line] or ["?"]
        found.append(f"#{o.index} answered by {where[-1]} {o.done - killed_at:+.3f}s after "
                     f"the SIGKILL (client clock): {line}")
    return f"{len(missing)} answered requests have no usage row:\n" + "\n".join(found)


def test_replicas_behind_nginx_survive_a_kill_and_a_rolling_restart(stack):
    keys = _issue_keys(stack["url"])
    replicas: list[Replica] = stack["replicas"]
    started = time.monotonic()
    outcomes = asyncio.run(_load(stack["url"], keys, replicas))
    seconds = time.monotonic() - started
    _in_parallel(lambda r: r.process.stop(), replicas)  # graceful: every row written

    killed_at = replicas[0].killed_at
    assert killed_at is not None and len(outcomes) == REQUESTS
    at_kill = [o for o in outcomes if o.sent <= killed_at <= o.done]
    failed = [o for o in outcomes if not o.answered and o.status != 429]
    by_kind = Counter((o.kind, o.status, o.error) for o in outcomes)
    print(f"\n{REQUESTS} requests in {seconds:.1f}s; {len(at_kill)} in flight at the SIGKILL, "
          f"{sum(o in failed for o in at_kill)} of them failed; {dict(by_kind)}")

    # No 5xx or broken connection, but for requests in flight when the replica was killed.
    unexplained = [o for o in failed if o not in at_kill]
    assert not unexplained, unexplained[:5]
    assert not [o for o in outcomes if o.status == 429 and o.kind in ("plain", "stream")]
    assert [r.exit_codes for r in replicas] == [None, [0], [0]]  # drained, then exited 0

    # Limits held across the replicas: requests were refused, never more let through.
    rpm = [o for o in outcomes if o.kind == "rpm"]
    assert any(o.status == 429 for o in rpm)
    assert _most_in_a_minute([o for o in rpm if o.answered]) <= RPM
    concurrent = [o for o in outcomes if o.kind == "concurrent"]
    assert any(o.status == 429 for o in concurrent)
    assert 1 <= stack["mock"].max_in_flight <= MAX_CONCURRENT  # at the upstream, all replicas

    # Every answered request has exactly one usage row, and none has two.
    answered = [o for o in outcomes if o.answered]
    assert all(o.request_id for o in answered)
    rows = _rows(stack["database"], [str(o.request_id) for o in answered])
    assert not [i for i, n in rows.items() if n > 1]
    missing = [o for o in answered if not rows[str(o.request_id)]]
    if missing and "usage_journal" not in Settings.model_fields:
        pytest.xfail(f"{len(missing)} answered requests have no usage row: the crash-safe "
                     "journal (gateway/usage/journal.py) is not there yet")
    assert not missing, _missing_rows(missing, killed_at, replicas, stack["nginx_log"])

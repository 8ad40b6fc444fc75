"""One gateway replica against three behind nginx, at concurrency 50, side by side.

    python -m bench.replicas [--duration 5] [--rounds 3] [--concurrency 50] [--json out.json]

Starts bench/mock_upstream.py, three `python -m gateway serve` replicas sharing one Postgres
database (`bench_replicas`, created if missing, emptied) and one Redis (keys under a fresh
prefix, deleted after), and two nginx processes (bench/nginx.py): one in front of the first
replica alone, one in front of all three. Requests carry an API key with an rpm limit far above
the load, so each one checks and settles its limits in Redis, and every request is logged to
Postgres: the production path. Each round runs, back to back, one replica directly, one
replica behind nginx and three behind nginx; the rounds are pooled.

It reports req/s, p50 and p99, the CPU the replicas (together) and nginx spent per request,
req/s per gateway core (1e6 / gateway CPU us per request), each replica's resident memory,
and the connections each replica holds to Postgres (pg_stat_activity) and to Redis (CLIENT
LIST), matched to the replica by the client port of its sockets, sampled during a three-replica
run and after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from bench import nginx
from bench.client import Result, Run, load
from bench.harness import (
    cpu_seconds,
    gateway,
    mock_upstream,
    rss_bytes,
    run_fast,
    write_json,
)
from bench.usage_writer import empty_table, ensure_database

DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_replicas"
DEFAULT_REDIS = "redis://127.0.0.1:6379/5"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
SETUPS = ("1 replica, direct", "1 replica + nginx", "3 replicas + nginx")


@dataclass
class Pooled:
    """What the rounds of one setup measured together."""

    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    failures: int = 0
    completed: int = 0
    gateway_cpu: float = 0.0
    nginx_cpu: float = 0.0

    def add(self, run: Run, gateway_cpu: float, nginx_cpu: float) -> None:
        self.results += run.ok
        self.seconds += run.seconds
        self.failures += run.errors
        self.completed += run.completed
        self.gateway_cpu += gateway_cpu
        self.nginx_cpu += nginx_cpu

    @property
    def rps(self) -> float:
        return len(self.results) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        values = sorted(r.latency for r in self.results)
        return values[min(len(values) - 1, int(q * len(values)))] if values else math.nan

    def per_request_us(self, cpu: float) -> float:
        return cpu / self.completed * 1e6 if self.completed else math.nan


@dataclass
class Replica:
    port: int
    pid: int


def request_bytes(port: int, api_key: str, stream: bool) -> bytes:
    """One chat request as the OpenAI SDK sends it, with the gateway API key."""
    body = orjson.dumps({"model": "bench-model", "stream": stream,
                         "messages": [{"role": "user", "content": "Say hello to the benchmark."}]})
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            "content-type: application/json\r\naccept: application/json\r\n"
            "authorization: Bearer sk-bench\r\nx-portkey-provider: openai\r\n"
            f"x-portkey-api-key: {api_key}\r\ncontent-length: {len(body)}\r\n\r\n")
    return head.encode() + body


def issue_key(port: int) -> str:
    response = httpx.post(f"http://127.0.0.1:{port}/admin/api-keys", timeout=30,
                          headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                          json={"name": "bench", "scopes": ["inference"], "rate_limits": [
                              {"type": "requests", "unit": "rpm", "value": 1_000_000_000}]})
    response.raise_for_status()
    return str(response.json()["key"])


def client_ports(pid: int, server_port: int) -> set[int]:
    """Local ports of `pid`'s TCP connections to `server_port` on loopback (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
            for line in lines:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


async def connections(replicas: list[Replica], database_url: str,
                      redis_url: str) -> list[tuple[int, int]]:
    """(Postgres, Redis) connections of each replica, as the servers list them."""
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        backends = [row["client_port"] for row in await connection.fetch(
            "SELECT client_port FROM pg_stat_activity WHERE pid <> pg_backend_pid()")]
    finally:
        await connection.close()
    with redis.Redis.from_url(redis_url) as client:
        clients = [int(c["addr"].rsplit(":", 1)[1]) for c in client.client_list()]
    redis_port = int(redis_url.split(":")[2].split("/")[0])
    found = []
    for replica in replicas:
        pg, rd = client_ports(replica.pid, 5432), client_ports(replica.pid, redis_port)
        found.append((sum(p in pg for p in backends), sum(p in rd for p in clients)))
    return found


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    await ensure_database(args.database_url)
    await empty_table(args.database_url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    env = {"DATABASE_URL": args.database_url, "GATEWAY_DATABASE_URL": args.database_url,
           "REDIS_URL": args.redis_url, "GATEWAY_REDIS_PREFIX": prefix,
           "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN, "GATEWAY_CIRCUIT_SHARED": "true"}
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(mock_upstream())
        replicas = [Replica(port, proc.pid) for port, proc in
                    (stack.enter_context(gateway(upstream, **env)) for _ in range(3))]
        one_port, _ = stack.enter_context(nginx.nginx([replicas[0].port]))
        three_port, _ = stack.enter_context(nginx.nginx([r.port for r in replicas]))
        nginx_pids = _nginx_pids()
        key = issue_key(replicas[0].port)
        try:
            return await _measure(args, replicas, nginx_pids, key,
                                  {SETUPS[0]: replicas[0].port, SETUPS[1]: one_port,
                                   SETUPS[2]: three_port})
        finally:
            _forget(args.redis_url, prefix)


async def _measure(args: argparse.Namespace, replicas: list[Replica], nginx_pids: list[int],
                   key: str, ports: dict[str, int]) -> dict[str, Any]:
    for port in ports.values():  # warm every path: imports, pools, key caches
        await load(port, request_bytes(port, key, args.stream), 8, 0.5, 0.0, stream=args.stream)
    idle_rss = [rss_bytes(r.pid) for r in replicas]
    pooled = {setup: Pooled() for setup in SETUPS}
    samples: list[list[tuple[int, int]]] = []
    for round_ in range(args.rounds):
        for setup, port in ports.items():
            gw = sum(cpu_seconds(r.pid) for r in replicas)
            ng = sum(cpu_seconds(p) for p in nginx_pids)
            sampler = None
            if setup == SETUPS[2]:
                sampler = asyncio.create_task(_sample_midway(args, replicas, samples))
            run = await load(port, request_bytes(port, key, args.stream), args.concurrency,
                             args.duration, args.warmup, stream=args.stream)
            if sampler is not None:
                await sampler
            # CPU over the whole run (warm-up included), like `completed`.
            pooled[setup].add(run, sum(cpu_seconds(r.pid) for r in replicas) - gw,
                              sum(cpu_seconds(p) for p in nginx_pids) - ng)
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    samples.append(await connections(replicas, args.database_url, args.redis_url))
    return {"pooled": pooled, "idle_rss": idle_rss,
            "rss": [rss_bytes(r.pid) for r in replicas], "connections": samples}


async def _sample_midway(args: argparse.Namespace, replicas: list[Replica],
                         samples: list[list[tuple[int, int]]]) -> None:
    await asyncio.sleep(args.warmup + args.duration / 2)
    samples.append(await connections(replicas, args.database_url, args.redis_url))


def _nginx_pids() -> list[int]:
    """The nginx processes this benchmark started (children of this process)."""
    me = str(os.getpid())
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if (proc.name.isdigit() and (proc / "comm").read_text().strip() == "nginx"
                    and (proc / "stat").read_text().rsplit(")", 1)[1].split()[1] == me):
                found.append(int(proc.name))
    return found


def _forget(redis_url: str, prefix: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)


def report(figures: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    pooled: dict[str, Pooled] = figures["pooled"]
    print(f"\nconcurrency {args.concurrency}, {args.rounds} rounds of {args.duration:g} s per "
          f"setup, {'stream' if args.stream else 'non-stream'}, {os.cpu_count()} cores\n")
    print(f"{'setup':<20} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'gw us/req':>10}"
          f" {'nginx us/req':>12} {'req/s/core':>10} {'errors':>7}")
    rows = {}
    for setup, p in pooled.items():
        gw_us, ng_us = p.per_request_us(p.gateway_cpu), p.per_request_us(p.nginx_cpu)
        per_core = 1e6 / gw_us if gw_us else math.nan
        rows[setup] = {"rps": round(p.rps, 1), "p50_ms": round(p.percentile(0.5) * 1000, 2),
                       "p99_ms": round(p.percentile(0.99) * 1000, 2),
                       "gateway_cpu_us_per_request": round(gw_us, 1),
                       "nginx_cpu_us_per_request": None if setup == SETUPS[0] else round(ng_us, 1),
                       "rps_per_gateway_core": round(per_core, 0), "errors": p.failures}
        print(f"{setup:<20} {p.rps:>8.0f} {p.percentile(0.5) * 1000:>8.2f}"
              f" {p.percentile(0.99) * 1000:>8.2f} {gw_us:>10.0f}"
              f" {'-' if setup == SETUPS[0] else f'{ng_us:.0f}':>12} {per_core:>10.0f}"
              f" {p.failures:>7}")
    one, three = pooled[SETUPS[1]], pooled[SETUPS[2]]
    if one.results and three.results:
        print(f"\n3 replicas / 1 replica, both behind nginx: req/s x{three.rps / one.rps:.2f}, "
              f"p50 x{three.percentile(0.5) / one.percentile(0.5):.2f}, "
              f"p99 x{three.percentile(0.99) / one.percentile(0.99):.2f}")
    peak = [tuple(max(s[i][k] for s in figures["connections"]) for k in (0, 1))
            for i in range(3)]
    print(f"\n{'replica':<8} {'RSS idle MB':>12} {'RSS after MB':>13} {'Postgres conns':>15}"
          f" {'Redis conns':>12}   (connections: the most seen, during and after a run)")
    for i in range(3):
        idle, after = figures["idle_rss"][i] / 2**20, figures["rss"][i] / 2**20
        print(f"{i + 1:<8} {idle:>12.1f} {after:>13.1f} {peak[i][0]:>15} {peak[i][1]:>12}")
    return {"setups": rows, "rss_idle_mb": [round(b / 2**20, 1) for b in figures["idle_rss"]],
            "rss_after_mb": [round(b / 2**20, 1) for b in figures["rss"]],
            "connections_postgres_redis": peak}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--stream", action="store_true", help="stream requests (8 chunks)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--json", help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if nginx.binary() is None:
        print("nginx is not installed (apt-get install nginx)", file=sys.stderr)
        return 2
    figures = report(run_fast(_bench(args)), args)
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

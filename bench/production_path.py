"""Production path: what Postgres, Redis limits, an API key and a virtual key add to a request.

One gateway worker per configuration, both measured in the same run, in alternating turns:

- default:    SQLite usage log, no Redis, no keys; `x-portkey-provider: openai` with the
              provider's base URL pointed at the mock (GATEWAY_PROVIDER_BASE_URLS)
- production: the usage log on Postgres (a scratch database, created, migrated and dropped),
              limits in Redis under a prefix of its own, GATEWAY_REQUIRE_API_KEY with an API key
              whose rpm limit never trips, and a virtual key whose secret is the mock's key

For each: added p50 at concurrency 1 (gateway p50 minus direct-to-mock p50, pooled over the
rounds) and req/s at concurrency 50, non-stream chat; then production / default ratios.

    python -m bench.production_path [--rounds 3] [--duration 3] [--json out.json]
    python -m bench.production_path --gateway-repo /tmp/before   # an older checkout's gateway

`--gateway-repo PATH` runs `python -m gateway` from PATH (cwd and PYTHONPATH; with PATH's
`.venv/bin/python` when it has one, else this interpreter): the bench code stays this repo's.
The module the child imports is printed and recorded (`gateway_module`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from bench.client import Run, load
from bench.harness import (
    ROOT,
    _stop,
    cpu_seconds,
    free_port,
    mock_upstream,
    run_fast,
    wait_for_port,
    write_json,
)

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/0"
ADMIN_TOKEN = "bench-admin-token-" + "0" * 16
MOCK_KEY = "sk-bench-mock-key"
CONFIGS = ("default", "production")
BASELINE = "baseline "  # the prefix of the --baseline-repo gateways' names


@dataclass
class Target:
    """A running gateway and the request bytes that exercise its path."""

    port: int
    pid: int
    request: bytes


@dataclass
class Pooled:
    """One configuration's turns, pooled over the rounds."""

    direct_c1: list[float] = field(default_factory=list)
    gateway_c1: list[float] = field(default_factory=list)
    ok_c50: int = 0
    seconds_c50: float = 0.0
    cpu_c50: float = 0.0  # the gateway's CPU seconds during the c=50 turns
    errors: int = 0

    def add(self, direct: Run, c1: Run, c50: Run, cpu_c50: float) -> None:
        self.cpu_c50 += cpu_c50
        self.direct_c1 += [r.latency for r in direct.ok]
        self.gateway_c1 += [r.latency for r in c1.ok]
        self.ok_c50 += len(c50.ok)
        self.seconds_c50 += c50.seconds
        self.errors += direct.errors + c1.errors + c50.errors

    def summary(self) -> dict[str, Any]:
        direct, through = _p50(self.direct_c1), _p50(self.gateway_c1)
        return {"added_p50_ms": round((through - direct) * 1000, 3),
                "gateway_p50_ms": round(through * 1000, 3),
                "direct_p50_ms": round(direct * 1000, 3),
                "rps_c50": round(self.ok_c50 / self.seconds_c50, 1) if self.seconds_c50 else 0.0,
                # CPU per request moves far less with the machine's load than req/s does.
                "cpu_us_c50": round(self.cpu_c50 / self.ok_c50 * 1e6, 1) if self.ok_c50 else 0.0,
                "requests": len(self.gateway_c1) + self.ok_c50, "errors": self.errors}


def _p50(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


def request_bytes(port: int, headers: dict[str, str]) -> bytes:
    """One non-stream chat request as the OpenAI SDK sends it, with these extra headers."""
    body = orjson.dumps({"model": "bench-model", "stream": False, "messages": [
        {"role": "user", "content": "Say hello to the benchmark."}]})
    lines = ["POST /v1/chat/completions HTTP/1.1", f"host: 127.0.0.1:{port}",
             "content-type: application/json", "accept: application/json",
             *(f"{name}: {value}" for name, value in headers.items()),
             f"content-length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class GatewayRepo:
    """Where the gateway under test comes from: its checkout and its interpreter."""

    def __init__(self, path: Path, python: str | None) -> None:
        self.path = path.resolve()
        venv = self.path / ".venv" / "bin" / "python"
        self.python = python or (str(venv) if venv.exists() else sys.executable)

    def env(self, **extra: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith("GATEWAY_") and k not in ("DATABASE_URL", "REDIS_URL")}
        return {**keep, "PYTHONPATH": str(self.path), "GATEWAY_LOG_LEVEL": "warning", **extra}

    def run(self, env: dict[str, str], *args: str) -> str:
        done = subprocess.run([self.python, *args], cwd=self.path, env=env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout.strip()

    def module_file(self) -> str:
        """The gateway package the child really imports (proves an older checkout runs)."""
        return self.run(self.env(), "-c", "import gateway; print(gateway.__file__)")

    @contextlib.contextmanager
    def serve(self, env: dict[str, str]) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
        port = free_port()
        proc = subprocess.Popen(
            [self.python, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], cwd=self.path, env=env)
        try:
            wait_for_port(port, proc, "the gateway", timeout=60)
            yield port, proc
        finally:
            _stop(proc)


@contextlib.contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A Postgres database of our own for the run, dropped afterwards."""
    name = f"bench_production_{uuid.uuid4().hex[:10]}"
    run_fast(_admin_sql(server, f'CREATE DATABASE "{name}"'))
    print(f"scratch database: {name}", flush=True)
    try:
        yield f"{server}/{name}"
    finally:
        run_fast(_admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin_sql(server: str, sql: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A key prefix of our own; whatever the gateway wrote under it is deleted afterwards."""
    from redis import Redis

    prefix = f"bench-production-{uuid.uuid4().hex[:10]}:"
    try:
        yield prefix
    finally:
        client = Redis.from_url(url)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def create_keys(port: int) -> dict[str, str]:
    """An API key with an rpm limit that never trips, and a virtual key holding the mock's key."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                      headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        api = admin.post("/admin/api-keys", json={
            "name": "bench", "scopes": ["inference"],
            "rate_limits": [{"type": "requests", "unit": "rpm", "value": 10**9}]})
        vk = admin.post("/admin/virtual-keys", json={
            "name": "bench", "provider": "openai", "key": MOCK_KEY})
    for response in (api, vk):
        if response.status_code != 201:
            raise RuntimeError(f"creating keys failed: {response.status_code} {response.text}")
    return {"api_key": api.json()["key"], "virtual_key": vk.json()["slug"]}


def _check(port: int, request: bytes, name: str) -> None:
    """One request by hand first: a misconfigured path fails loudly, not as 0 req/s."""
    head, body = request.split(b"\r\n\r\n", 1)
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    headers.pop("content-length")
    response = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=body,
                          headers=headers, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"{name}: {response.status_code} {response.text}")


@contextlib.contextmanager
def gateways(repo: GatewayRepo, upstream: str, args: argparse.Namespace,
             tmp: Path, label: str = "") -> Iterator[dict[str, Target]]:
    """The default and production gateways of one checkout, named `<label>default`, ..."""
    tmp.mkdir(parents=True, exist_ok=True)
    base = {"GATEWAY_PROVIDER_BASE_URLS": orjson.dumps({"openai": upstream}).decode()}
    default_env = repo.env(**base, DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/default.sqlite3",
                           GATEWAY_SPOOL_DIR=str(tmp / "spool-default"))
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(scratch_database(args.postgres))
        prefix = stack.enter_context(redis_prefix(args.redis))
        production_env = repo.env(
            **base, DATABASE_URL=database, REDIS_URL=args.redis, GATEWAY_REDIS_PREFIX=prefix,
            GATEWAY_SPOOL_DIR=str(tmp / "spool-production"), GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN,
            GATEWAY_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
            GATEWAY_REQUIRE_API_KEY="true")
        repo.run(production_env, "-m", "gateway", "migrate")
        port, proc = stack.enter_context(repo.serve(default_env))
        targets = {label + "default": Target(port, proc.pid, request_bytes(port, {
            "authorization": f"Bearer {MOCK_KEY}", "x-portkey-provider": "openai"}))}
        port, proc = stack.enter_context(repo.serve(production_env))
        keys = create_keys(port)
        targets[label + "production"] = Target(port, proc.pid, request_bytes(port, {
            "x-portkey-api-key": keys["api_key"], "x-portkey-virtual-key": keys["virtual_key"]}))
        for name, target in targets.items():
            _check(target.port, target.request, name)
        yield targets


async def measure(targets: dict[str, Target], mock_port: int,
                  args: argparse.Namespace) -> dict[str, Pooled]:
    names = list(targets)
    pooled = {name: Pooled() for name in names}
    direct_request = request_bytes(mock_port, {"authorization": f"Bearer {MOCK_KEY}"})
    for target in targets.values():  # imports, pools, caches, prepared statements
        await load(target.port, target.request, 4, args.warmup * 2, 0.0, stream=False)
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            target = targets[name]
            direct = await load(mock_port, direct_request, 1, args.duration, args.warmup,
                                stream=False)
            c1 = await load(target.port, target.request, 1, args.duration, args.warmup,
                            stream=False)
            cpu = cpu_seconds(target.pid)
            c50 = await load(target.port, target.request, 50, args.duration, args.warmup,
                             stream=False)
            pooled[name].add(direct, c1, c50, cpu_seconds(target.pid) - cpu)
            added = _p50([r.latency for r in c1.ok]) - _p50([r.latency for r in direct.ok])
            print(f"round {round_ + 1} {name:<19} +p50 c=1 {added * 1000:6.3f} ms   "
                  f"c=50 {c50.rps:8.0f} req/s", flush=True)
    return pooled


def _ratio(after: float, before: float) -> float | None:
    return round(after / before, 3) if before > 0 else None


def report(pooled: dict[str, Pooled]) -> dict[str, Any]:
    figures: dict[str, Any] = {name: pooled[name].summary() for name in pooled}
    default, production = figures["default"], figures["production"]
    figures["ratios"] = {
        "added_p50": _ratio(production["added_p50_ms"], default["added_p50_ms"]),
        "rps_c50": _ratio(production["rps_c50"], default["rps_c50"]),
        "cpu_us_c50": _ratio(production["cpu_us_c50"], default["cpu_us_c50"])}
    print(f"\n{'':<20} {'+p50 c=1 ms':>12} {'gw p50 ms':>10} {'direct p50':>11} "
          f"{'req/s c=50':>11} {'CPU us/req':>11} {'errors':>7}")
    for name in pooled:
        row = figures[name]
        print(f"{name:<20} {row['added_p50_ms']:>12.3f} {row['gateway_p50_ms']:>10.3f} "
              f"{row['direct_p50_ms']:>11.3f} {row['rps_c50']:>11.0f} {row['cpu_us_c50']:>11.1f} "
              f"{row['errors']:>7}")
    ratios = figures["ratios"]
    print(f"production / default: added p50 {ratios['added_p50']}, req/s {ratios['rps_c50']}, "
          f"CPU/req {ratios['cpu_us_c50']}")
    if BASELINE + "default" in pooled:  # this checkout against the baseline, measured together
        figures["vs_baseline"] = {name: {
            "added_p50": _ratio(figures[name]["added_p50_ms"],
                                figures[BASELINE + name]["added_p50_ms"]),
            "rps_c50": _ratio(figures[name]["rps_c50"], figures[BASELINE + name]["rps_c50"]),
            "cpu_us_c50": _ratio(figures[name]["cpu_us_c50"],
                                 figures[BASELINE + name]["cpu_us_c50"]),
        } for name in CONFIGS}
        for name, ratio in figures["vs_baseline"].items():
            print(f"{name} / baseline: added p50 {ratio['added_p50']}, "
                  f"req/s {ratio['rps_c50']}, CPU/req {ratio['cpu_us_c50']}")
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.production_path",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds a turn")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds a turn")
    parser.add_argument("--gateway-repo", type=Path, default=ROOT,
                        help="checkout whose gateway runs (default: this repo)")
    parser.add_argument("--baseline-repo", type=Path,
                        help="another checkout (e.g. the commit before a change) whose two "
                             "gateways are measured in the same rounds, for ratios")
    parser.add_argument("--python", help="interpreter for the gateway (default: the checkout's "
                                         ".venv/bin/python, else this one)")
    parser.add_argument("--postgres", default=POSTGRES,
                        help="Postgres server URL, no database; a scratch one is created")
    parser.add_argument("--redis", default=REDIS)
    parser.add_argument("--json", help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repo = GatewayRepo(args.gateway_repo, args.python)
    module = repo.module_file()
    print(f"gateway: {module} (python {repo.python})", flush=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    baseline = GatewayRepo(args.baseline_repo, None) if args.baseline_repo else None
    if baseline is not None:
        print(f"baseline: {baseline.module_file()} (python {baseline.python})", flush=True)
    with tempfile.TemporaryDirectory(prefix="gateway-production-") as tmp, \
            mock_upstream() as upstream, contextlib.ExitStack() as stack:
        targets = stack.enter_context(gateways(repo, upstream, args, Path(tmp) / "this"))
        if baseline is not None:
            targets |= stack.enter_context(gateways(baseline, upstream, args,
                                                    Path(tmp) / "baseline", BASELINE))
        mock_port = urlsplit(upstream).port
        assert mock_port is not None
        pooled = run_fast(measure(targets, mock_port, args))
    figures = report(pooled)
    figures["settings"] = {"rounds": args.rounds, "duration": args.duration,
                           "warmup": args.warmup, "gateway_repo": str(repo.path),
                           "gateway_module": module, "python": repo.python, "started": started}
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

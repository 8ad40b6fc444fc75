"""What the crash-safe usage journal costs a request: gateway CPU and req/s at concurrency 50.

One gateway (bench.journal_switch: `python -m gateway serve`, one worker, switchable by signal)
with the usage log on a scratch Postgres database, as in production, measured against itself
in turns whose order rotates each round:

- off:        no journal: rows wait only in memory, as before the journal
- on:         the journal as it ships: one write() per group of rows to an O_APPEND file
- fsync:      plus an fdatasync after every write (GATEWAY_USAGE_JOURNAL_FSYNC=true)
- off again:  `off` once more: how far two turns of the same state read apart (the noise;
              leave it out with --no-control)

Each turn is non-stream chat at concurrency 50 (bench.client) against the fast mock; the
gateway's CPU (user + system, /proc) over the turn is divided by the requests it answered in
it, warm-up included. Per round each state is compared with `off` of the same round; the
medians of those differences are reported with the pooled figures. The gateway also times each
Journal.append in place (its thread's CPU time, user and system): the journal's own cost per
request, without what a busy machine's noise adds to the turns. Then a micro-measure in this
process: Journal.append of groups of eight typical rows, and of one row with and without
fdatasync, on the same file system (--dir).

    python -m bench.journal_cost [--rounds 8] [--duration 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

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
from bench.journal_switch import MODES, STATS_ENV
from bench.production_path import MOCK_KEY, POSTGRES, GatewayRepo, request_bytes, scratch_database
from gateway.usage import codec
from gateway.usage.journal import Journal
from gateway.usage.spool import Spool

SIGNALS = {mode: signum for signum, mode in MODES.items()}
STATES = {"off": "off", "on": "on", "fsync": "fsync", "off again": "off"}  # name -> mode


@dataclass
class Tally:
    """One state's turns, pooled over the rounds, and each round's figures."""

    ok: int = 0
    completed: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    errors: int = 0
    rounds: list[tuple[float, float]] = field(default_factory=list)  # (CPU us/req, req/s)

    def add(self, run: Run, cpu: float) -> None:
        self.ok += len(run.ok)
        self.completed += run.completed
        self.seconds += run.seconds
        self.cpu += cpu
        self.errors += run.errors
        self.rounds.append((cpu / max(run.completed, 1) * 1e6, run.rps))

    def summary(self) -> dict[str, Any]:
        return {"rps_c50": round(self.ok / self.seconds, 1) if self.seconds else 0.0,
                "cpu_us": round(self.cpu / self.completed * 1e6, 2) if self.completed else 0.0,
                "requests": self.ok, "errors": self.errors}


@contextlib.contextmanager
def switchable_gateway(upstream: str, postgres: str, tmp: Path) -> Iterator[tuple[int, int]]:
    """The switchable gateway on a scratch database, timing its appends into
    `tmp/appends.jsonl`; yields (port, pid)."""
    repo = GatewayRepo(ROOT, None)
    with scratch_database(postgres) as database:
        repo.run(repo.env(DATABASE_URL=database), "-m", "gateway", "migrate")
        env = repo.env(GATEWAY_PROVIDER_BASE_URLS=orjson.dumps({"openai": upstream}).decode(),
                       DATABASE_URL=database, GATEWAY_SPOOL_DIR=str(tmp / "spool"),
                       **{STATS_ENV: str(tmp / "appends.jsonl")})
        port = free_port()
        proc = subprocess.Popen(
            [repo.python, "-m", "bench.journal_switch", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"], cwd=ROOT, env=env)
        try:
            wait_for_port(port, proc, "the gateway", timeout=60)
            yield port, proc.pid
        finally:
            _stop(proc)


async def measure(port: int, pid: int, names: list[str],
                  args: argparse.Namespace) -> dict[str, Tally]:
    request = request_bytes(port, {"authorization": f"Bearer {MOCK_KEY}",
                                   "x-portkey-provider": "openai"})
    tallies = {name: Tally() for name in names}
    await load(port, request, 8, args.warmup * 2, 0.0, stream=False)  # imports, pools
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        line = []
        for name in names[shift:] + names[:shift]:
            os.kill(pid, SIGNALS[STATES[name]])  # applied long before the warm-up ends
            before = cpu_seconds(pid)
            run = await load(port, request, 50, args.duration, args.warmup, stream=False)
            tallies[name].add(run, cpu_seconds(pid) - before)
            if run.errors:
                raise RuntimeError(f"{name}: {run.errors} failed requests")
            line.append(f"{name} {run.rps:5.0f} req/s {tallies[name].rounds[-1][0]:5.1f} us")
        print(f"round {round_ + 1}: " + " | ".join(line), flush=True)
    os.kill(pid, SIGNALS["off"])  # the last turn's appends, written out
    return tallies


def in_place(stats: Path, turns: int) -> dict[str, dict[str, float]]:
    """Journal.append timed inside the gateway, per row, by state."""
    deadline = time.monotonic() + 10
    while len(_lines(stats)) < turns + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    totals: dict[str, list[int]] = {}
    for line in _lines(stats):
        counts = totals.setdefault(line["mode"], [0, 0, 0, 0])
        for at, key in enumerate(("calls", "rows", "cpu_ns", "wall_ns")):
            counts[at] += line[key]
    return {mode: {"rows_per_write": round(rows / calls, 2), "cpu_us": round(cpu / rows / 1e3, 3),
                   "wall_us": round(wall / rows / 1e3, 3)}
            for mode, (calls, rows, cpu, wall) in totals.items() if mode != "off" and rows}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] \
        if path.exists() else []


def typical_row() -> bytes:
    """A usage row like the gateway's for a small chat request."""
    return codec.encode({
        "id": "0190f3a4-7b2c-7d2e-9c1a-3f5e8d2b6a10", "created_at": datetime.now(UTC),
        "trace_id": "0190f3a4-7b2c-7d2e-9c1a-3f5e8d2b6a11", "endpoint": "chat/completions",
        "provider": "openai", "model": "gpt-4o-mini", "stream": False, "status_code": 200,
        "prompt_tokens": 12, "completion_tokens": 9, "cached_tokens": 0, "total_tokens": 21,
        "tokens_estimated": False, "cost_usd": Decimal("0.0000072"), "latency_ms": 1.83,
        "ttfb_ms": 1.61, "upstream_latency_ms": 0.92, "retry_count": 0, "metadata": {},
        "attempts": [{"path": "", "provider": "openai", "status": 200, "ms": 0.92}]})


def append_cost(directory: Path, group: int, fsync: bool, count: int) -> dict[str, float]:
    """CPU (user, system) and wall microseconds per row of Journal.append in groups of
    `group` rows, the segments released as the writer would release them."""
    journal = Journal(directory, fsync=fsync)
    journal.start(Spool(directory / "spool"))
    rows = [typical_row()] * group
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for i in range(0, count, group):
        journal.append(rows, i)
        if i % 512 == 0:
            journal.release(max(i - 256, 0), i)  # the writer a batch behind
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    journal.close(count, count)
    return {"user_us": round((after.ru_utime - before.ru_utime) / count * 1e6, 3),
            "sys_us": round((after.ru_stime - before.ru_stime) / count * 1e6, 3),
            "wall_us": round(wall / count * 1e6, 3)}


def paired(tallies: dict[str, Tally], name: str) -> dict[str, float]:
    """Medians over the rounds of (state - off) CPU and (state / off) req/s."""
    pairs = list(zip(tallies[name].rounds, tallies["off"].rounds, strict=True))
    pooled, off = tallies[name].summary(), tallies["off"].summary()
    return {"cpu_us_added_median": round(statistics.median(a[0] - b[0] for a, b in pairs), 2),
            "rps_ratio_median": round(statistics.median(a[1] / b[1] for a, b in pairs), 4),
            "cpu_us_added_pooled": round(pooled["cpu_us"] - off["cpu_us"], 2),
            "rps_ratio_pooled": round(pooled["rps_c50"] / off["rps_c50"], 4)}


def report(tallies: dict[str, Tally], inside: dict[str, dict[str, float]],
           micro: dict[str, dict[str, float]]) -> dict[str, Any]:
    figures: dict[str, Any] = {name: tally.summary() for name, tally in tallies.items()}
    print(f"\n{'':<10} {'req/s c=50':>11} {'CPU us/req':>11} {'requests':>9}")
    for name in tallies:
        row = figures[name]
        print(f"{name:<10} {row['rps_c50']:>11.0f} {row['cpu_us']:>11.2f} {row['requests']:>9}")
    figures["against_off"] = {name: paired(tallies, name) for name in tallies if name != "off"}
    for name, delta in figures["against_off"].items():
        print(f"{name} - off: CPU/req {delta['cpu_us_added_median']:+.2f} us (median of rounds; "
              f"pooled {delta['cpu_us_added_pooled']:+.2f}), req/s x{delta['rps_ratio_median']}"
              f" (pooled x{delta['rps_ratio_pooled']})")
    figures["append_in_gateway"] = inside
    for mode, cost in inside.items():
        print(f"Journal.append timed inside the gateway ({mode}): {cost['cpu_us']:.2f} us CPU, "
              f"{cost['wall_us']:.2f} us wall per request ({cost['rows_per_write']} rows a write)")
    figures["append"] = micro
    print(f"Journal.append per row ({len(typical_row())} bytes), in this process:")
    for name, cost in micro.items():
        print(f"  {name:<22} user {cost['user_us']:.2f} sys {cost['sys_us']:.2f} "
              f"wall {cost['wall_us']:.2f} us")
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.journal_cost",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="rounds of one turn each")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds a turn")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds a turn")
    parser.add_argument("--no-control", action="store_true", help="leave out `off again`")
    parser.add_argument("--appends", type=int, default=40_000,
                        help="rows appended by the micro-measure")
    parser.add_argument("--dir", type=Path, help="where the journals go (default: a temporary "
                                                 "directory, on /tmp's file system)")
    parser.add_argument("--postgres", default=POSTGRES,
                        help="Postgres server URL, no database; a scratch one is created")
    parser.add_argument("--json", help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [name for name in STATES if not (args.no_control and name == "off again")]
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with tempfile.TemporaryDirectory(prefix="gateway-journal-", dir=args.dir) as tmp, \
            mock_upstream() as upstream:
        with switchable_gateway(upstream, args.postgres, Path(tmp)) as (port, pid):
            tallies = run_fast(measure(port, pid, names, args))
            inside = in_place(Path(tmp) / "appends.jsonl", len(names) * args.rounds)
        micro = {"groups of 8": append_cost(Path(tmp) / "a", 8, False, args.appends),
                 "one row": append_cost(Path(tmp) / "b", 1, False, args.appends // 4),
                 "one row, fdatasync": append_cost(Path(tmp) / "c", 1, True, 500)}
    figures = report(tallies, inside, micro)
    figures["settings"] = {"rounds": args.rounds, "duration": args.duration,
                           "warmup": args.warmup, "directory": tmp, "started": started,
                           "load_average": os.getloadavg()}
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

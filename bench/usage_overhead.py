"""What usage logging costs a request: latency with the usage log detached and attached.

Starts the mock upstream and one gateway on a Postgres database (`python -m
bench.usage_switch serve --workers 1`: the gateway, with its usage recorder switched off and on
by signal), then measures turns: for every concurrency, each round runs one turn with the
recorder detached and one with it attached, alternating which goes first. Turns are short, so
the VM's drift (tens of percent over a minute) hits both states alike, and one process is
compared with itself (two identical gateway processes read up to 13% apart in p99 here). The
latencies of all turns of a state are pooled and the percentiles taken over them. Issue 5's
target: p99 with logging on within 10% of logging off. Next to the ratio goes a 95% interval
from resampling blocks of rounds (a round's p99 ranges over a factor of two as the VM drifts):
how far the verdict could move on another run alike. With the default 40 rounds it spans
about ±3 to 7% at concurrency 1 and ±5 to 15% at 16 and 64 on a 2-core VM.

The load generator (this process) and the mock upstream run at real-time priority (SCHED_RR,
when the user may set it): they are the measuring apparatus, and on a small host they share
cores with the gateway and Postgres (a batch insert keeps Postgres busy on a core for
milliseconds). At normal priority the apparatus waits its turn behind them, and that wait
reads as gateway latency although the gateway did nothing.
The gateway and Postgres keep normal priority and compete as they would on a shared host.
`--normal-priority` measures the old way.

    python -m bench.usage_overhead [--database-url URL] [--rounds 40] [--duration 1]
        [--concurrency 1,16,64] [--pin] [--noise-floor] [--normal-priority] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.client import chat_request, load
from bench.harness import add_gateway_env, cpu_seconds, gateway, mock_upstream, run_fast
from bench.usage_writer import DEFAULT_URL, empty_table, ensure_database

P99_TARGET = 1.10  # logging on / logging off
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_BLOCK = 4  # rounds drawn together
_SWITCH = {"off": signal.SIGUSR1, "on": signal.SIGUSR2}
_CORES = sorted(os.sched_getaffinity(0))  # before --pin narrows this process's own set


@dataclass
class Pooled:
    """Every measured request of one state at one concurrency, over all its turns."""

    turns: list[list[float]] = field(default_factory=list)  # latencies, a list per round
    seconds: float = 0.0
    requests: int = 0  # warm-up included, as the CPU time is
    cpu_seconds: float = 0.0
    errors: int = 0

    @property
    def latencies(self) -> list[float]:
        return [latency for turn in self.turns for latency in turn]

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def percentile(values: list[float], q: float) -> float:
    """The value below which a share q of `values` lies (nearest rank; 0 for none)."""
    return _pooled_percentile([sorted(values, reverse=True)], q)


def _pooled_percentile(turns: list[list[float]], q: float) -> float:
    """percentile() of the turns pooled, from each turn sorted in descending order: only the
    top of the pool is merged, not the whole of it sorted."""
    count = sum(map(len, turns))
    if not count:
        return 0.0
    from_top = count - 1 - min(count - 1, int(q * count))
    return next(itertools.islice(heapq.merge(*turns, reverse=True), from_top, None))


def ratio_interval(off: list[list[float]], on: list[list[float]], q: float = 0.99,
                   resamples: int = BOOTSTRAP_RESAMPLES, block: int = BOOTSTRAP_BLOCK,
                   seed: int = 0) -> tuple[float, float] | None:
    """A 95% interval of percentile(on) / percentile(off) over pooled turns, by resampling
    rounds in blocks of consecutive ones (None with fewer than two rounds).

    Rounds, not requests, are the unit: the VM's drift moves a whole turn (one round's p99
    ranged 8 to 28 ms here), and a round's two turns ran side by side, so they are drawn
    together; blocks keep what drift neighbouring rounds share. The interval says how far the
    verdict could move on another run alike."""
    rounds = min(len(off), len(on))
    if rounds < 2:
        return None
    off = [sorted(turn, reverse=True) for turn in off[:rounds]]
    on = [sorted(turn, reverse=True) for turn in on[:rounds]]
    draw = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        picked: list[int] = []
        while len(picked) < rounds:  # a block may wrap around the end
            first = draw.randrange(rounds)
            picked += [(first + i) % rounds for i in range(block)]
        picked = picked[:rounds]
        low = _pooled_percentile([off[i] for i in picked], q)
        if low > 0:  # no requests at all in the drawn "off" turns: nothing to compare
            ratios.append(_pooled_percentile([on[i] for i in picked], q) / low)
    if not ratios:
        return None
    ratios.sort()
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


def _mock_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "bench.mock_upstream"], capture_output=True,
                           text=True).stdout.split()
    return [int(pid) for pid in found]


def _apparatus_first() -> bool:
    """This process (the load generator) and the mock upstream at real-time priority, once
    the gateway is started (processes started later, such as taskset, get normal priority).
    False, with everything back at normal priority, when not permitted."""
    try:
        for pid in (0, *_mock_pids()):
            os.sched_setscheduler(pid, os.SCHED_RR | os.SCHED_RESET_ON_FORK,
                                  os.sched_param(1))
    except OSError as exc:  # no CAP_SYS_NICE, or the mock is gone
        for pid in (0, *_mock_pids()):
            with contextlib.suppress(OSError):
                os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
        print(f"cannot set real-time priority ({type(exc).__name__}): measuring at normal "
              "priority", file=sys.stderr)
        return False
    return True


def _pin(gateway_pid: int, database_url: str) -> None:
    """The gateway alone on the last core; this client, the mock (its sibling) and the
    Postgres backends serving the bench database on the others."""
    if len(_CORES) < 2:
        raise SystemExit("--pin needs at least two cores")
    mine, rest = {_CORES[-1]}, set(_CORES[:-1])
    subprocess.run(["taskset", "-a", "-p", "-c", str(_CORES[-1]), str(gateway_pid)],
                   check=True, capture_output=True)
    os.sched_setaffinity(0, rest)
    others = [*_mock_pids(), *map(int, run_fast(_database_backends(database_url)))]
    for pid in others:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, rest)
    assert os.sched_getaffinity(gateway_pid) == mine


async def _database_backends(database_url: str) -> list[str]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = "
                                      "current_database() AND pid <> pg_backend_pid()")
    finally:
        await connection.close()
    return [str(row["pid"]) for row in rows]


async def _turn(proc: subprocess.Popen[bytes], port: int, state: str, concurrency: int,
                pooled: Pooled, args: argparse.Namespace) -> None:
    if not args.noise_floor:
        proc.send_signal(_SWITCH[state])
    await asyncio.sleep(0.02)  # the signal handler runs on the gateway's next loop turn
    cpu = cpu_seconds(proc.pid)
    run = await load(port, chat_request(port, stream=False), concurrency, args.duration,
                     args.warmup, stream=False)
    pooled.cpu_seconds += cpu_seconds(proc.pid) - cpu
    pooled.requests += run.completed
    pooled.seconds += run.seconds
    pooled.turns.append([result.latency for result in run.ok])
    pooled.errors += run.errors


async def _bench(args: argparse.Namespace) -> bool:
    env = {"DATABASE_URL": args.database_url, "GATEWAY_DATABASE_URL": args.database_url,
           "GATEWAY_AUTO_MIGRATE": "true", "GATEWAY_USAGE_LOG": "true",
           **dict(args.gateway_env)}
    pooled: dict[tuple[str, int], Pooled] = defaultdict(Pooled)
    with mock_upstream() as upstream, \
            gateway(upstream, module="bench.usage_switch", **env) as (port, proc):
        await load(port, chat_request(port, stream=False), 4, 2.0, 0.0, stream=False)
        args.realtime = not args.normal_priority and _apparatus_first()
        for round_ in range(args.rounds):
            if args.pin:  # every round: the gateway may have opened another connection
                await asyncio.to_thread(_pin, proc.pid, args.database_url)
            order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
            for concurrency in args.concurrency:
                for state in order:
                    await _turn(proc, port, state, concurrency, pooled[state, concurrency], args)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return _report(pooled, args)


def _report(pooled: dict[tuple[str, int], Pooled], args: argparse.Namespace) -> bool:
    print(f"{args.rounds} rounds of {args.duration:g} s turns per state, non-stream, "
          f"percentiles over every turn's requests" + (", pinned" if args.pin else "")
          + (", load generator and mock at real-time priority" if args.realtime
             else ", everything at normal priority")
          + (", NOISE FLOOR (logging on in both states)" if args.noise_floor else ""))
    print(f"{'conc':>5} | {'logging':>8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'CPU us/req':>11} | p99 on/off [95% interval over rounds]")
    held = True
    figures = []
    for concurrency in args.concurrency:
        off, on = pooled["off", concurrency], pooled["on", concurrency]
        base = off.percentile(0.99)
        ratio = on.percentile(0.99) / base if base else None  # None: no request succeeded
        interval = ratio_interval(off.turns, on.turns)
        errors = off.errors + on.errors
        ok = ratio is not None and ratio <= P99_TARGET and errors == 0
        held &= ok
        figure = {"concurrency": concurrency, "p99_ratio": ratio, "interval": interval,
                  "errors": errors, "settings": _settings(args)}
        for state, each in (("off", off), ("on", on)):
            count = len(each.latencies)
            figure[state] = {"requests": count, "rps": count / each.seconds,
                             "p50_ms": each.percentile(0.5), "p99_ms": each.percentile(0.99),
                             "cpu_us_per_request": each.cpu_seconds / max(each.requests, 1)
                             * 1e6}
            tail = (("  n/a" if ratio is None else f"{ratio:>5.2f}x")
                    + (f" [{interval[0]:.2f}-{interval[1]:.2f}]" if interval else "")
                    + f" {'PASS' if ok else 'MISS'}"
                    + (f" ({errors} errors)" if errors else "")) if state == "on" else ""
            row = figure[state]
            print(f"{concurrency:>5} | {state:>8} {count:>9} {row['rps']:>8.0f} "
                  f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
                  f"{row['cpu_us_per_request']:>11.0f} | {tail}")
        figures.append(figure)
    print(f"p99 with logging on within {round((P99_TARGET - 1) * 100)}% of off at every "
          f"concurrency: {'PASS' if held else 'MISS'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return held


def _settings(args: argparse.Namespace) -> dict[str, object]:
    """How a run measured, so that bench.usage_overhead_runs combines only runs alike."""
    return {"rounds": args.rounds, "duration": args.duration, "warmup": args.warmup,
            "pin": args.pin, "realtime": args.realtime, "noise_floor": args.noise_floor,
            "gateway_env": sorted("=".join(pair) for pair in args.gateway_env)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.usage_overhead",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--duration", type=float, default=1.0, help="measured seconds per turn")
    parser.add_argument("--warmup", type=float, default=0.25,
                        help="unmeasured seconds at the start of each turn")
    parser.add_argument("--concurrency", default="1,16,64",
                        type=lambda s: [int(x) for x in s.split(",")])
    add_gateway_env(parser, ", e.g. GATEWAY_USAGE_BATCH_SIZE=100")
    parser.add_argument("--pin", action="store_true",
                        help="the gateway alone on the last core; the client, the mock and "
                             "the bench database's Postgres backends on the others")
    parser.add_argument("--normal-priority", action="store_true",
                        help="leave the load generator and the mock upstream at normal "
                             "priority, queued behind Postgres's inserts on a shared core")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--noise-floor", action="store_true",
                        help="never switch logging off: the ratio two identical states give")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> bool:
    await ensure_database(args.database_url)
    await empty_table(args.database_url)
    return await _bench(args)


def main(argv: list[str] | None = None) -> int:
    return 0 if run_fast(_main(parse_args(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())

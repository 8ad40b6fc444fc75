"""Load run: direct-to-mock beside through-gateway, requests/s and p50/p99 latency.

Starts bench/mock_upstream.py and `python -m gateway serve --workers 1` (with `openai` pointed
at the mock and a temporary SQLite file) as separate processes, then for each mode (non-stream,
stream) and concurrency level runs the same request against the mock directly and through the
gateway, back to back, and prints them side by side.

    python -m bench.load [--duration 5] [--concurrency 1,16,64] [--json out.json]
    python -m bench.load --py-spy profile.svg   # also profile the gateway (pip install py-spy)
    python -m bench.load --gateway-env GATEWAY_UPSTREAM_TRANSPORT=httpx   # httpx's own pool
    python -m bench.load --modes responses,responses-stream,responses-chain   # issue 24
    python -m bench.load --modes messages,messages-stream --concurrency 1,64  # issue 24

The `responses*` and `messages*` modes compare /v1/responses and /v1/messages with their
baseline through the same gateway, not with the mock directly (bench/responses_load.py,
bench/messages_load.py): their `direct` columns are that baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from bench.client import Run, chat_request, load
from bench.harness import (
    add_gateway_env,
    cpu_seconds,
    gateway,
    mock_upstream,
    run_fast,
    write_json,
)
from bench.messages_load import MODES as MESSAGES_MODES
from bench.messages_load import measure as measure_messages
from bench.messages_load import verdict as messages_verdict
from bench.responses_load import MODES as RESPONSES_MODES
from bench.responses_load import PROVIDER as RESPONSES_PROVIDER
from bench.responses_load import measure as measure_responses
from bench.responses_load import verdict as responses_verdict

ADDED_P50_TARGET_MS = 1.0
THROUGHPUT_TARGET_RPS = 1500.0


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.2f}"


def _us(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e6:.0f}"


def _row(mode: str, direct: Run, through: Run) -> str:
    added = through.percentile(0.5) - direct.percentile(0.5)
    return (f"{mode:<10} {direct.concurrency:>5} | {direct.rps:>8.0f}"
            f" {_ms(direct.percentile(0.5)):>8} {_ms(direct.percentile(0.99)):>8}"
            f" | {through.rps:>8.0f}"
            f" {_ms(through.percentile(0.5)):>8} {_ms(through.percentile(0.99)):>8}"
            f" | {_ms(added):>9} {_us(through.cpu_per_request):>9}"
            f" {direct.errors + through.errors:>6}")


HEADER = (f"{'mode':<10} {'conc':>5} | {'direct':>8} {'p50 ms':>8} {'p99 ms':>8} |"
          f" {'gateway':>8} {'p50 ms':>8} {'p99 ms':>8} | {'+p50 ms':>9} {'gw CPU':>9}"
          f" {'errors':>6}\n"
          f"{'':<10} {'':>5} | {'req/s':>8} {'':>8} {'':>8} | {'req/s':>8} {'':>8} {'':>8} |"
          f" {'':>9} {'us/req':>9}")


@contextlib.contextmanager
def profiled(pid: int, output: str | None) -> Iterator[None]:
    """py-spy record the gateway while the block runs (output .svg, .txt raw, or .json)."""
    if output is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    fmt = {"txt": "raw", "json": "speedscope"}.get(output.rsplit(".", 1)[-1], "flamegraph")
    proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--output", output,
                             "--format", fmt, "--rate", "500"])
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


async def _bench(args: argparse.Namespace) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with mock_upstream(chunks=args.chunks) as upstream, \
            gateway(upstream, **_gateway_env(upstream, args)) as (port, proc):
        mock_port = urlsplit(upstream).port
        assert mock_port is not None
        # Warm both (imports, pools, caches) before anything is measured.
        for stream in (False, True):
            await load(port, chat_request(port, stream=stream), 4, 0.5, 0.0, stream=stream)
        print(HEADER)
        with profiled(proc.pid, args.py_spy):
            for mode in args.modes:
                stream = mode == "stream"
                for concurrency in args.concurrency:
                    if mode in RESPONSES_MODES or mode in MESSAGES_MODES:
                        measure = measure_responses if mode in RESPONSES_MODES \
                            else measure_messages
                        direct, through, ratios = await measure(
                            port, proc.pid, mode, concurrency, args.duration, args.warmup,
                            args.rounds)
                        print(_row(mode, direct, through), flush=True)
                        rows.append({**_summary(mode, direct, through),
                                     "paired_rps_ratio": round(statistics.median(ratios), 4)
                                     if ratios else None})
                        continue
                    direct = await load(mock_port, chat_request(mock_port, stream=stream),
                                        concurrency, args.duration, args.warmup, stream=stream)
                    cpu = cpu_seconds(proc.pid)
                    through = await load(port, chat_request(port, stream=stream),
                                         concurrency, args.duration, args.warmup, stream=stream)
                    # CPU per request holds up on a busy machine, where req/s does not.
                    through.cpu_seconds = cpu_seconds(proc.pid) - cpu
                    print(_row(mode, direct, through), flush=True)
                    rows.append(_summary(mode, direct, through))
    return rows


def _gateway_env(upstream: str, args: argparse.Namespace) -> dict[str, str]:
    """`openai` and the Responses cases' chat-only provider at the mock, then --gateway-env."""
    urls = {"openai": upstream, RESPONSES_PROVIDER: upstream}
    return {"GATEWAY_PROVIDER_BASE_URLS": orjson.dumps(urls).decode(), **dict(args.gateway_env)}


def _summary(mode: str, direct: Run, through: Run) -> dict[str, object]:
    def one(run: Run) -> dict[str, object]:
        return {"rps": round(run.rps, 1), "p50_ms": round(run.percentile(0.5) * 1000, 3),
                "p99_ms": round(run.percentile(0.99) * 1000, 3),
                "ttfb_p50_ms": round(run.percentile(0.5, "ttfb") * 1000, 3),
                "requests": len(run.ok), "errors": run.errors,
                "cpu_us_per_request": round(run.cpu_per_request * 1e6, 1)}
    return {"mode": mode, "concurrency": direct.concurrency, "direct": one(direct),
            "gateway": one(through),
            "added_p50_ms": round((through.percentile(0.5) - direct.percentile(0.5)) * 1000, 3)}


def _verdict(rows: list[dict[str, object]]) -> list[str]:
    lines = []
    for row in rows:
        gw = row["gateway"]
        assert isinstance(gw, dict)
        if row["mode"] in RESPONSES_MODES or row["mode"] in MESSAGES_MODES:
            direct = row["direct"]
            assert isinstance(direct, dict)
            judge = responses_verdict if row["mode"] in RESPONSES_MODES else messages_verdict
            lines.extend(judge(row, direct, gw))
            continue
        if row["concurrency"] == 1:
            added = row["added_p50_ms"]
            assert isinstance(added, float)
            ok = added < ADDED_P50_TARGET_MS
            lines.append(f"added p50 at concurrency 1, {row['mode']}: {added:.2f} ms "
                         f"(target < {ADDED_P50_TARGET_MS:g} ms) {'PASS' if ok else 'MISS'}")
        if row["concurrency"] == 64 and row["mode"] == "non-stream":
            ok = gw["rps"] >= THROUGHPUT_TARGET_RPS
            lines.append(f"gateway throughput at concurrency 64, non-stream: {gw['rps']:.0f} req/s "
                         f"(target >= {THROUGHPUT_TARGET_RPS:g}) {'PASS' if ok else 'MISS'}")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", default="1,16,64",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--modes", default="non-stream,stream",
                        type=lambda s: [m.strip() for m in s.split(",")])
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of the Messages and Responses modes "
                             "(each run is --duration / --rounds seconds)")
    parser.add_argument("--chunks", type=int, default=8, help="content chunks per stream")
    parser.add_argument("--json", help="also write the figures to this file")
    add_gateway_env(parser, ", e.g. GATEWAY_UPSTREAM_TRANSPORT=httpx")
    parser.add_argument("--py-spy", help="profile the gateway with py-spy into this file")
    args = parser.parse_args(argv)
    unknown = set(args.modes) - {"non-stream", "stream", *RESPONSES_MODES, *MESSAGES_MODES}
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = run_fast(_bench(args))
    print()
    for line in _verdict(rows):
        print(line)
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

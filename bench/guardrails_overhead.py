"""What guardrails add end to end: three input checks against none, through the same gateway.

Starts bench/mock_upstream.py and `python -m gateway serve --workers 1` (bench/harness.py),
then sends the same chat request (a 2 KB last message) with two inline configs that differ
only in their guardrails: none, and one shorthand hook of three checks (contains, regexMatch,
wordCount; they pass, so the answer is a 200 carrying `hook_results`). Each round measures
both at concurrency 1 (p50 latency) and at concurrency 64 (req/s), alternating which goes
first; the figures are the medians over rounds, side by side, with the added p50 and the
throughput ratio checked against issue 25's targets.

    python -m bench.guardrails_overhead [--rounds 5] [--duration 3] [--json out.json]
    python -m bench.guardrails_overhead --gateway-env GATEWAY_USAGE_LOG=false  # no usage rows
    python -m bench.guardrails_overhead --py-spy /tmp/gr  # then profile each at c=64
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from bench.client import Run, load
from bench.harness import (
    add_gateway_env,
    add_pinning,
    cpu_seconds,
    gateway,
    mock_upstream,
    pinned,
    run_fast,
    write_json,
)
from bench.load import profiled

ADDED_P50_TARGET_MS = 0.1
THROUGHPUT_RATIO_TARGET = 0.90

CHECKS = {"default.contains": {"words": ["forbidden", "secret"], "operator": "none"},
          "default.regexMatch": {"rule": r"\b\d{3}-\d{2}-\d{4}\b", "not": True},
          "default.wordCount": {"minWords": 1, "maxWords": 2000}}
WORDS = "the quick brown fox jumps over the lazy dog and keeps running far away "
MESSAGE = (WORDS * 40)[:2048]
BASE_CONFIG: dict[str, Any] = {"provider": "openai", "api_key": "sk-bench"}
CONFIGS = {"none": BASE_CONFIG,
           "3 checks": {**BASE_CONFIG, "input_guardrails": [{**CHECKS, "deny": True}]}}


def guarded_request(port: int, config: dict[str, Any]) -> bytes:
    """The raw bytes of one chat request (as the OpenAI SDK sends it) with an inline config."""
    body = orjson.dumps({"model": "bench-model", "stream": False, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": MESSAGE}]})
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            "content-type: application/json\r\naccept: application/json\r\n"
            f"x-portkey-config: {orjson.dumps(config).decode()}\r\n"
            f"content-length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    p50: dict[str, list[float]] = {name: [] for name in CONFIGS}
    rps: dict[str, list[float]] = {name: [] for name in CONFIGS}
    cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    under = pinned(args)  # (before the mock starts: it runs where this process does)
    with mock_upstream() as upstream, \
            gateway(upstream, under=under, **dict(args.gateway_env)) as (port, proc):
        requests = {name: guarded_request(port, config) for name, config in CONFIGS.items()}
        await _sanity(port)
        for data in requests.values():  # warm: imports, pools, the config cache
            await load(port, data, 4, 0.5, 0.0, stream=False)
        order = list(CONFIGS)
        for round_ in range(args.rounds):
            for name in order if round_ % 2 == 0 else order[::-1]:
                single = await load(port, requests[name], 1, args.duration, args.warmup,
                                    stream=False)
                used = cpu_seconds(proc.pid)
                many = await load(port, requests[name], 64, args.duration, args.warmup,
                                  stream=False)
                many.cpu_seconds = cpu_seconds(proc.pid) - used
                _check(name, single, many)
                p50[name].append(single.percentile(0.5))
                rps[name].append(many.rps)
                cpu[name].append(many.cpu_per_request)
            print(f"round {round_ + 1}: " + ", ".join(
                f"{n} p50 {p50[n][-1] * 1000:.3f} ms, {rps[n][-1]:.0f} req/s" for n in CONFIGS),
                flush=True)
        if args.py_spy:  # after the measured rounds, so py-spy's sampling costs them nothing
            for name in CONFIGS:
                with profiled(proc.pid, f"{args.py_spy}-{name.replace(' ', '_')}.txt"):
                    await load(port, requests[name], 64, 8.0, 0.0, stream=False)
    return {name: {"p50_ms": statistics.median(p50[name]) * 1000,
                   "rps": statistics.median(rps[name]),
                   "cpu_us_per_request": statistics.median(cpu[name]) * 1e6,
                   "rounds_p50_ms": [round(v * 1000, 3) for v in p50[name]],
                   "rounds_rps": [round(v, 1) for v in rps[name]],
                   "rounds_cpu_us": [round(v * 1e6, 1) for v in cpu[name]]} for name in CONFIGS}


async def _sanity(port: int) -> None:
    """The guarded request really runs the three checks, and they pass; the other none."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for name, config in CONFIGS.items():
            response = await client.post(
                "/v1/chat/completions", headers={"x-portkey-config": orjson.dumps(config).decode()},
                json={"model": "bench-model", "messages": [{"role": "user", "content": MESSAGE}]})
            results = response.json().get("hook_results")
            ran = [] if results is None else [
                (c["id"], c["verdict"]) for c in results["before_request_hooks"][0]["checks"]]
            expected = [(check, True) for check in CHECKS] if config is not BASE_CONFIG else []
            if response.status_code != 200 or ran != expected:
                raise SystemExit(f"{name}: status {response.status_code}, checks {ran}")


def _check(name: str, *runs: Run) -> None:
    for run in runs:
        if run.errors or not run.ok:
            raise SystemExit(f"{name}: {run.errors} errors at concurrency {run.concurrency} "
                             "(is the gateway answering 200?)")


def _report(figures: dict[str, Any]) -> list[str]:
    none, guarded = figures["none"], figures["3 checks"]
    added = guarded["p50_ms"] - none["p50_ms"]
    ratio = guarded["rps"] / none["rps"]
    lines = [f"{'guardrails':<10} | {'c=1 p50 ms':>10} | {'c=64 req/s':>10} | "
             f"{'gw CPU us/req':>13}"]
    for name, row in figures.items():
        lines.append(f"{name:<10} | {row['p50_ms']:>10.3f} | {row['rps']:>10.0f} | "
                     f"{row['cpu_us_per_request']:>13.0f}")
    fast, enough = added < ADDED_P50_TARGET_MS, ratio >= THROUGHPUT_RATIO_TARGET
    lines += ["",
              f"added p50 at concurrency 1: {added:.3f} ms (target < {ADDED_P50_TARGET_MS:g} ms) "
              f"{'PASS' if fast else 'MISS'}",
              f"throughput at concurrency 64: {ratio:.1%} of none (target >= "
              f"{THROUGHPUT_RATIO_TARGET:.0%}) {'PASS' if enough else 'MISS'}",
              f"gateway CPU per request at concurrency 64: "
              f"+{guarded['cpu_us_per_request'] - none['cpu_us_per_request']:.0f} us",
              # Each round's two measurements are minutes apart at most, not the whole run:
              # on a busy machine these move less than the medians above.
              "paired by round (medians of each round's 3 checks against its none): "
              f"+{_paired(none, guarded, 'rounds_p50_ms', lambda a, b: b - a):.3f} ms p50, "
              f"{_paired(none, guarded, 'rounds_rps', lambda a, b: b / a):.1%} of the req/s, "
              f"+{_paired(none, guarded, 'rounds_cpu_us', lambda a, b: b - a):.0f} us CPU"]
    return lines


def _paired(none: dict[str, Any], guarded: dict[str, Any], key: str,
            compare: Callable[[float, float], float]) -> float:
    return statistics.median(compare(a, b) for a, b in zip(none[key], guarded[key], strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.guardrails_overhead",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per level")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds first")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--py-spy", metavar="PREFIX",
                        help="then py-spy each config at c=64 for 8 s into PREFIX-<name>.txt "
                             "(collapsed stacks)")
    add_gateway_env(parser)
    add_pinning(parser)
    args = parser.parse_args(argv)
    figures = run_fast(_bench(args))
    print()
    for line in _report(figures):
        print(line)
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

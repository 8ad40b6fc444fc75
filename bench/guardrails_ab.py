"""What guardrails add, in two checkouts at once: bench.guardrails_overhead's request, in short
interleaved blocks, so that a busy machine's drift falls on every arm alike.

One mock upstream and one gateway worker per tree (`--tree PATH`, repeatable; default this
checkout), all started together; then round after round, in a rotating order, each (tree,
config) pair gets one block at concurrency 1 (p50) and one at concurrency 64 (req/s and the
gateway's CPU per request, from /proc). Per tree it prints the medians over rounds and the
paired figures (the same round's none and 3-checks blocks, one against the other): added CPU
per request, req/s ratio, added p50. A tree is a directory holding `gateway/` and `bench/`,
such as a `git archive` of another commit.

    python -m bench.guardrails_ab --tree /tmp/before --tree . [--rounds 12] [--json out.json]
        [--gateway-env GATEWAY_USAGE_LOG=false]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.client import load
from bench.guardrails_overhead import CONFIGS, guarded_request
from bench.harness import (
    add_gateway_env,
    add_pinning,
    cpu_seconds,
    gateway,
    mock_upstream,
    pinned,
    run_fast,
    trees_parser,
    write_json,
)

Arm = tuple[str, str]  # (tree, config name)


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    trees = [str(Path(tree).resolve()) for tree in args.tree or ["."]]
    arms: list[Arm] = [(tree, name) for tree in trees for name in CONFIGS]
    cpu: dict[Arm, list[float]] = {arm: [] for arm in arms}
    rps: dict[Arm, list[float]] = {arm: [] for arm in arms}
    p50: dict[Arm, list[float]] = {arm: [] for arm in arms}
    under = pinned(args)  # (before the mock starts: it runs where this process does)
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(mock_upstream())
        gateways = {tree: stack.enter_context(gateway(
            upstream, under=under, PYTHONPATH=tree, **dict(args.gateway_env))) for tree in trees}
        requests = {arm: guarded_request(gateways[arm[0]][0], CONFIGS[arm[1]]) for arm in arms}
        for arm in arms:  # warm: imports, pools, the config cache
            await load(gateways[arm[0]][0], requests[arm], 8, 1.0, 0.0, stream=False)
        for round_ in range(args.rounds):
            order = arms[round_ % len(arms):] + arms[:round_ % len(arms)]
            for arm in order[::-1] if round_ % 2 else order:
                port, proc = gateways[arm[0]]
                single = await load(port, requests[arm], 1, args.duration, 0.1, stream=False)
                used = cpu_seconds(proc.pid)
                many = await load(port, requests[arm], 64, args.duration, 0.2, stream=False)
                many.cpu_seconds = cpu_seconds(proc.pid) - used
                if single.errors or many.errors:
                    raise SystemExit(f"{arm}: errors (is the gateway answering 200?)")
                cpu[arm].append(many.cpu_per_request * 1e6)
                rps[arm].append(many.rps)
                p50[arm].append(single.percentile(0.5) * 1000)
            print(f"round {round_ + 1} of {args.rounds}", flush=True)
    return {tree: _figures(tree, cpu, rps, p50) for tree in trees}


def _figures(tree: str, cpu: dict[Arm, list[float]], rps: dict[Arm, list[float]],
             p50: dict[Arm, list[float]]) -> dict[str, Any]:
    none, checks = (tree, "none"), (tree, "3 checks")
    median = statistics.median
    return {
        **{name: {"cpu_us_per_request": median(cpu[(tree, name)]),
                  "rps": median(rps[(tree, name)]), "p50_ms": median(p50[(tree, name)])}
           for name in CONFIGS},
        "paired_added_cpu_us": median([b - a for a, b in zip(cpu[none], cpu[checks],
                                                              strict=True)]),
        "paired_rps_ratio": median([b / a for a, b in zip(rps[none], rps[checks],
                                                           strict=True)]),
        "paired_added_p50_ms": median([b - a for a, b in zip(p50[none], p50[checks],
                                                              strict=True)]),
    }


def _report(figures: dict[str, Any]) -> list[str]:
    lines = [f"{'tree':<28} | {'none CPU':>8} | {'3 chk CPU':>9} | {'+CPU us':>7} | "
             f"{'req/s ratio':>11} | {'+p50 ms':>7}   (paired medians over rounds)"]
    for tree, row in figures.items():
        lines.append(f"{tree[-28:]:<28} | {row['none']['cpu_us_per_request']:>8.0f} | "
                     f"{row['3 checks']['cpu_us_per_request']:>9.0f} | "
                     f"{row['paired_added_cpu_us']:>7.0f} | {row['paired_rps_ratio']:>11.1%} | "
                     f"{row['paired_added_p50_ms']:>7.3f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = trees_parser("python -m bench.guardrails_ab", __doc__)
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds")
    parser.add_argument("--duration", type=float, default=1.5, help="measured seconds a block")
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

"""What guardrails add, counted in instructions: bench.guardrails_overhead's two requests
through one gateway worker run under valgrind's callgrind, which counts the instructions the
process executes (all its threads), the same for the same work whatever else the machine
does. Seconds on a shared 2-core VM move by ±5-10% between runs; these counts move by a few
percent (the usage writer's batches and the loop's wake-ups follow the clock).

Per tree (`--tree PATH`, repeatable; default this checkout), one gateway under callgrind:
warm it up, then for each of `--repeats` rounds and each config, zero the counters, send
`--requests` requests one after another (concurrency 1), wait a second for the work after the
answers (usage rows, the writer's batch), and dump. Prints instructions a request (the least
of the rounds) with no guardrails and with three checks, and what the checks add.

    python -m bench.guardrails_instructions --tree /tmp/before --tree . [--requests 200]

Needs valgrind (callgrind_control too); a request costs ~50 times its usual time under it.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.client import Connection
from bench.guardrails_overhead import CONFIGS, guarded_request
from bench.harness import gateway, mock_upstream, trees_parser, write_json


async def _count(tree: str, args: argparse.Namespace) -> dict[str, float]:
    counts: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="callgrind-") as dumps, mock_upstream() as upstream, \
            gateway(upstream, PYTHONPATH=tree, start_timeout=300.0, under=(
                "valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={dumps}/out.%p")) \
            as (port, proc):
        requests = {name: guarded_request(port, config) for name, config in CONFIGS.items()}
        connection = await Connection.open("127.0.0.1", port)
        for _ in range(3):  # warm: imports, pools, the config cache, the adaptive interpreter
            for data in requests.values():
                for _ in range(60):
                    await connection.request(data)
        for _ in range(args.repeats):
            for name, data in requests.items():
                await asyncio.sleep(1.0)
                _control("-z", proc.pid)
                for _ in range(args.requests):
                    await connection.request(data)
                await asyncio.sleep(1.0)  # the work after the answers
                seen = set(Path(dumps).iterdir())
                _control("-d", proc.pid)
                counts[name].append(_total(set(Path(dumps).iterdir()) - seen) / args.requests)
                print(f"{tree}: {name}: {counts[name][-1]:,.0f} instructions a request",
                      flush=True)
        connection.close()
    return {name: min(values) for name, values in counts.items()}


def _control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def _total(files: set[Path]) -> float:
    """The instructions of a dump: its files' `summary:` (or `totals:`) lines."""
    total = 0
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total += int(line.split()[1])
                break
    return total


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    figures = {}
    for tree in [str(Path(tree).resolve()) for tree in args.tree or ["."]]:
        counts = await _count(tree, args)
        none, checks = counts["none"], counts["3 checks"]
        figures[tree] = {"none": none, "3 checks": checks, "added": checks - none,
                         "ratio": none / checks}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = trees_parser("python -m bench.guardrails_instructions", __doc__)
    parser.add_argument("--requests", type=int, default=200, help="requests a count")
    parser.add_argument("--repeats", type=int, default=2, help="counts per config")
    args = parser.parse_args(argv)
    figures = asyncio.run(_bench(args))
    print(f"\n{'tree':<28} | {'none':>11} | {'3 checks':>11} | {'added':>9} | "
          f"{'none / 3 checks':>15}   (instructions a request, least of the rounds)")
    for tree, row in figures.items():
        print(f"{tree[-28:]:<28} | {row['none']:>11,.0f} | {row['3 checks']:>11,.0f} | "
              f"{row['added']:>9,.0f} | {row['ratio']:>15.1%}")
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

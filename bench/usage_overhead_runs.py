"""What several runs of bench.usage_overhead say together: the p99 ratio across runs.

One run's ratio moves with the VM: identical states (`--noise-floor`) read up to about 6%
apart, and runs of the same code read from 0.90x to 1.11x at concurrency 1 on a slow day. A
verdict on a 10% target needs more than one run. This reads the `--json` files of runs of the
same code and prints, per concurrency, the geometric mean of their p99 ratios with a 95%
Student-t interval over the runs (on the logarithms: a ratio of 0.9 is as far from 1 as one
of 1.11), how many runs passed on their own, and the mean p50 ratio and CPU per request.
The target holds when the interval's upper end is within it.

    python -m bench.usage_overhead_runs RUN.json [RUN.json ...]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.usage_overhead import P99_TARGET

# Two-sided 95% quantiles of Student's t by degrees of freedom (1 to 30); the normal beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(degrees: int) -> float:
    return _T975[degrees - 1] if degrees <= len(_T975) else 1.960


@dataclass(frozen=True)
class Across:
    """One concurrency's p99 ratios over runs."""

    concurrency: int
    ratios: tuple[float, ...]
    mean: float  # geometric
    interval: tuple[float, float] | None  # None with a single run
    passed: int
    p50_ratio: float  # geometric mean
    cpu_off: float  # µs per request, arithmetic means
    cpu_on: float

    @property
    def held(self) -> bool:
        return self.interval is not None and self.interval[1] <= P99_TARGET


def _geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def across(figures: list[dict[str, Any]]) -> Across:
    """The runs' figures for one concurrency (each an item of a `--json` file)."""
    usable = [f for f in figures if f["p99_ratio"] and not f["errors"]]
    if not usable:
        raise ValueError("no run has a p99 ratio without errors")
    ratios = [f["p99_ratio"] for f in usable]
    logs = [math.log(r) for r in ratios]
    interval = None
    if len(logs) > 1:
        half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
        centre = statistics.fmean(logs)
        interval = (math.exp(centre - half), math.exp(centre + half))
    return Across(
        concurrency=usable[0]["concurrency"], ratios=tuple(ratios),
        mean=_geometric_mean(ratios), interval=interval,
        passed=sum(r <= P99_TARGET for r in ratios),
        p50_ratio=_geometric_mean([f["on"]["p50_ms"] / f["off"]["p50_ms"] for f in usable]),
        cpu_off=statistics.fmean(f["off"]["cpu_us_per_request"] for f in usable),
        cpu_on=statistics.fmean(f["on"]["cpu_us_per_request"] for f in usable))


def summarise(runs: list[list[dict[str, Any]]]) -> list[Across]:
    """Every concurrency measured, over the runs that measured it."""
    by_concurrency: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        for figure in run:
            by_concurrency.setdefault(figure["concurrency"], []).append(figure)
    return [across(figures) for _, figures in sorted(by_concurrency.items())]


def report(summary: list[Across]) -> bool:
    print(f"{'conc':>5} | {'runs':>4} {'passed':>6} | {'p99 on/off':>10} "
          f"{'[95% interval over runs]':>24} | {'range':>11} | {'p50 on/off':>10} | "
          f"CPU us/req off / on")
    for item in summary:
        interval = (f"[{item.interval[0]:.3f}-{item.interval[1]:.3f}]" if item.interval
                    else "(one run)")
        print(f"{item.concurrency:>5} | {len(item.ratios):>4} {item.passed:>6} | "
              f"{item.mean:>9.3f}x {interval:>24} | "
              f"{min(item.ratios):.2f}-{max(item.ratios):.2f} | {item.p50_ratio:>9.3f}x | "
              f"{item.cpu_off:.0f} / {item.cpu_on:.0f} {'PASS' if item.held else 'MISS'}")
    held = all(item.held for item in summary)
    print(f"p99 with logging on within {round((P99_TARGET - 1) * 100)}% of off at every "
          f"concurrency, over the runs: {'PASS' if held else 'MISS'}")
    return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.usage_overhead_runs",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path,
                        help="files written by bench.usage_overhead --json")
    args = parser.parse_args(argv)
    runs = [json.loads(path.read_text()) for path in args.runs]
    return 0 if report(summarise(runs)) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What several runs of bench.usage_overhead say together: the p99 ratio across runs.

One run's ratio moves with the VM: identical states (`--noise-floor`) read up to about 6%
apart, and runs of the same code read from 0.90x to 1.11x at concurrency 1 on a slow day. A
verdict on a 10% target needs more than one run. This reads the `--json` files of runs of the
same code and settings and prints, per concurrency, the geometric mean of their p99 ratios
with a 95% Student-t interval over the runs (exp(mean ± t·s/√n) of the logarithms: a ratio of
0.9 is as far from 1 as one of 1.11), how many runs passed on their own, and the mean p50
ratio and CPU per request. The target holds when the interval's upper end is within it (a
one-sided 97.5% bound) and no run had errors. Two runs almost never pass (t is 12.7 with one
degree of freedom): take five or more. Runs with errors or without a ratio are left out of
the figures, counted, and fail the verdict; files whose recorded settings differ (rounds,
priority, pinning, noise floor, gateway environment) are refused.

    python -m bench.usage_overhead_runs RUN.json [RUN.json ...]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.usage_overhead import P99_TARGET

# Two-sided 95% quantiles of Student's t by degrees of freedom: 1 to 30, then a few beyond
# (a degree between two of them takes the lower one's, the wider interval); the normal past 120.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_T975_BEYOND = ((120, 1.980), (60, 2.000), (40, 2.021), (30, 2.042))


def t975(degrees: int) -> float:
    if degrees < 1:
        raise ValueError("a t interval needs at least one degree of freedom (two runs)")
    if degrees <= len(_T975):
        return _T975[degrees - 1]
    if degrees > 120:
        return 1.960
    return next(t for at_least, t in _T975_BEYOND if degrees >= at_least)


@dataclass(frozen=True)
class Across:
    """One concurrency's p99 ratios over runs."""

    concurrency: int
    ratios: tuple[float, ...]  # of the usable runs
    left_out: int  # runs with errors or without a ratio
    p50_ratio: float | None = None  # geometric mean; None without a usable run
    cpu_off: float | None = None  # µs per request, arithmetic means
    cpu_on: float | None = None

    @property
    def mean(self) -> float | None:
        """The geometric mean of the ratios (the interval's centre)."""
        return _geometric_mean(self.ratios) if self.ratios else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% Student-t interval on the logarithms; None with fewer than two runs."""
        if len(self.ratios) < 2:
            return None
        logs = [math.log(r) for r in self.ratios]
        centre = statistics.fmean(logs)
        half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
        return math.exp(centre - half), math.exp(centre + half)

    @property
    def passed(self) -> int:
        return sum(r <= P99_TARGET for r in self.ratios)

    @property
    def held(self) -> bool:
        interval = self.interval
        return self.left_out == 0 and interval is not None and interval[1] <= P99_TARGET


def _geometric_mean(values: Iterable[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def across(concurrency: int, figures: list[dict[str, Any]]) -> Across:
    """The runs' figures for one concurrency (each an item of a `--json` file)."""
    usable = [f for f in figures if f["p99_ratio"] and not f["errors"]]
    left_out = len(figures) - len(usable)
    if not usable:
        return Across(concurrency, (), left_out)
    return Across(
        concurrency=concurrency, ratios=tuple(f["p99_ratio"] for f in usable),
        left_out=left_out,
        p50_ratio=_geometric_mean(f["on"]["p50_ms"] / f["off"]["p50_ms"] for f in usable),
        cpu_off=statistics.fmean(f["off"]["cpu_us_per_request"] for f in usable),
        cpu_on=statistics.fmean(f["on"]["cpu_us_per_request"] for f in usable))


def settings_of(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any] | None]:
    """The settings each run recorded (None: written before runs recorded them); raises
    ValueError when two runs recorded different ones."""
    found = [run[0].get("settings") if run else None for run in runs]
    recorded = [s for s in found if s is not None]
    if any(s != recorded[0] for s in recorded):
        raise ValueError("the runs were measured with different settings: "
                         + "; ".join(sorted({json.dumps(s, sort_keys=True) for s in recorded})))
    return found


def summarise(runs: list[list[dict[str, Any]]]) -> list[Across]:
    """Every concurrency measured, over the runs that measured it."""
    by_concurrency: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        for figure in run:
            by_concurrency.setdefault(figure["concurrency"], []).append(figure)
    return [across(concurrency, figures)
            for concurrency, figures in sorted(by_concurrency.items())]


def _row(item: Across) -> str:
    if item.mean is None:
        return f"{item.concurrency:>5} | {0:>6} {item.left_out:>8} {0:>6} | no usable run"
    assert item.p50_ratio is not None and item.cpu_off is not None and item.cpu_on is not None
    bounds = item.interval
    interval = f"[{bounds[0]:.3f}-{bounds[1]:.3f}]" if bounds else "(needs 2+ runs)"
    span = f"{min(item.ratios):.2f}-{max(item.ratios):.2f}"
    verdict = "PASS" if item.held else "n/a" if bounds is None and not item.left_out else "MISS"
    return (f"{item.concurrency:>5} | {len(item.ratios):>6} {item.left_out:>8} "
            f"{item.passed:>6} | {item.mean:>9.3f}x {interval:>15} | {span:>9} | "
            f"{item.p50_ratio:>9.3f}x | {item.cpu_off:>7.0f} / {item.cpu_on:<5.0f} | {verdict}")


def report(summary: list[Across]) -> bool:
    print(f"{'conc':>5} | {'usable':>6} {'left out':>8} {'passed':>6} | {'p99 on/off':>10} "
          f"{'95% interval':>15} | {'range':>9} | {'p50 on/off':>10} | "
          f"{'CPU us/req off / on':>15} | verdict")
    for item in summary:
        print(_row(item))
    held = bool(summary) and all(item.held for item in summary)
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
    try:
        settings = settings_of(runs)
    except ValueError as exc:
        parser.error(str(exc))
    if None in settings:
        print(f"{settings.count(None)} of {len(runs)} files do not record their settings "
              "(written before runs recorded them)")
    return 0 if report(summarise(runs)) else 1


if __name__ == "__main__":
    sys.exit(main())

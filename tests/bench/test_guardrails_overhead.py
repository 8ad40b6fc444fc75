"""bench.guardrails_overhead and bench.guardrails_ab still run end to end (briefly); no timing
is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_guardrails_overhead_measures_both_configs(tmp_path: Path):
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.guardrails_overhead", "--rounds", "2", "--duration", "0.3",
         "--warmup", "0.1", "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "added p50 at concurrency 1:" in done.stdout
    assert "throughput at concurrency 64:" in done.stdout
    assert "paired by round" in done.stdout
    rows = json.loads(figures.read_text())
    assert set(rows) == {"none", "3 checks"}
    for row in rows.values():
        assert len(row["rounds_rps"]) == 2 and min(row["rounds_rps"]) > 0
        assert row["p50_ms"] > 0


def test_guardrails_ab_measures_each_tree(tmp_path: Path):
    figures = tmp_path / "figures.json"
    # Pinned (the gateway alone on the last core) where there are two cores or more.
    pin = ["--pin"] if len(os.sched_getaffinity(0)) >= 2 else []
    done = subprocess.run(
        [sys.executable, "-m", "bench.guardrails_ab", "--tree", str(ROOT), "--rounds", "2",
         "--duration", "0.3", "--json", str(figures), *pin],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(figures.read_text()).values()
    assert row["none"]["rps"] > 0 and row["3 checks"]["rps"] > 0
    assert row["paired_rps_ratio"] > 0 and "paired_added_cpu_us" in row

"""The benchmark scripts still run end to end (briefly): mock, gateway process, load client.

No timing is asserted here: only that every request through the real gateway process
succeeded and that the scripts report what they should.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def test_load_run_measures_direct_and_through_gateway(tmp_path: Path):
    figures = tmp_path / "figures.json"
    out = run("bench.load", "--duration", "0.3", "--warmup", "0.1", "--concurrency", "1,4",
              "--json", str(figures))
    rows = json.loads(figures.read_text())
    assert [(r["mode"], r["concurrency"]) for r in rows] == [
        ("non-stream", 1), ("non-stream", 4), ("stream", 1), ("stream", 4)]
    for row in rows:
        for side in ("direct", "gateway"):
            assert row[side]["errors"] == 0, row
            assert row[side]["requests"] > 0, row
    assert "added p50 at concurrency 1, stream" in out


def test_slow_streams_all_complete_and_memory_is_reported():
    out = run("bench.slow_streams", "--streams", "5", "--chunks", "3", "--delay-ms", "20")
    assert "completed: 5 ok, 0 failed" in out
    assert "peak RSS" in out


def test_usage_overhead_compares_logging_off_and_on(tmp_path: Path):
    figures = tmp_path / "figures.json"
    out = run("bench.usage_overhead", "--rounds", "2", "--duration", "0.3", "--warmup", "0.1",
              "--concurrency", "1,4", "--json", str(figures))
    assert "p99 with logging on within 10% of off at every concurrency" in out
    rows = json.loads(figures.read_text())
    assert [row["concurrency"] for row in rows] == [1, 4]
    for row in rows:
        assert row["errors"] == 0, row
        assert row["off"]["requests"] > 0 and row["on"]["requests"] > 0, row
        low, high = row["interval"]
        assert 0 < low <= high and row["p99_ratio"] > 0
        assert row["settings"]["rounds"] == 2 and row["settings"]["noise_floor"] is False

"""bench.replicas and bench.shared_circuits still run end to end (briefly); no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_replicas_bench_measures_every_setup_and_each_replica(tmp_path: Path):
    figures = tmp_path / "figures.json"
    run("bench.replicas", "--rounds", "1", "--duration", "0.5", "--warmup", "0.2",
        "--concurrency", "8", "--json", str(figures))
    found = json.loads(figures.read_text())
    assert list(found["setups"]) == ["1 replica, direct", "1 replica + nginx",
                                     "3 replicas + nginx"]
    for setup in found["setups"].values():
        assert setup["errors"] == 0 and setup["rps"] > 0, setup
        assert setup["gateway_cpu_us_per_request"] > 0
    assert len(found["rss_after_mb"]) == 3 and min(found["rss_after_mb"]) > 0
    # Every replica holds Postgres connections (key store, usage log) and Redis ones (limits,
    # the pub/sub subscription).
    assert all(pg >= 1 and redis >= 2 for pg, redis in found["connections_postgres_redis"])


def test_shared_circuits_bench_makes_no_redis_call_on_the_request_path():
    out = run("bench.shared_circuits", "--calls", "2000", "--opens", "5")
    assert "Redis calls made by the shared one: 0" in out
    assert "opening reaches the other replica (5 targets)" in out

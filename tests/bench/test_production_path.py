"""bench.production_path runs end to end (briefly) on the real Postgres and Redis.

No timing is asserted: only that both configurations served every request, the figures and
ratios are reported, and the scratch database and Redis keys are gone afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import POSTGRES_URL, _reachable, query
from tests.support.redis import SharedRedis

ROOT = Path(__file__).resolve().parents[2]


def test_production_path_measures_both_configurations(tmp_path: Path,
                                                      shared_redis: SharedRedis) -> None:
    problem = _reachable(POSTGRES_URL)
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(f"Postgres unreachable: {problem}")
    server = POSTGRES_URL.rsplit("/", 1)[0]
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.production_path", "--rounds", "1", "--duration", "0.2",
         "--warmup", "0.05", "--postgres", server, "--redis", shared_redis.url,
         "--json", str(figures)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "production / default" in done.stdout
    result = json.loads(figures.read_text())
    for name in ("default", "production"):
        assert result[name]["errors"] == 0, result
        assert result[name]["requests"] > 0 and result[name]["rps_c50"] > 0, result
    assert result["ratios"]["rps_c50"] > 0
    assert result["settings"]["gateway_module"] == str(ROOT / "gateway" / "__init__.py")
    [database] = re.findall(r"scratch database: (\w+)", done.stdout)
    assert query(POSTGRES_URL, "SELECT 1 FROM pg_database WHERE datname = :name",
                 name=database) == []

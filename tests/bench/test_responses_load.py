"""bench.load's /v1/responses modes still run end to end (briefly): every request of the
baseline and of the Responses side succeeded, streams to `response.completed`. No timing is
asserted here."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.test_bench_runs import run

MODES = ["responses", "responses-stream", "responses-nostore", "responses-chain"]


def test_responses_modes_run(tmp_path: Path):
    figures = tmp_path / "figures.json"
    out = run("bench.load", "--duration", "0.3", "--warmup", "0.1", "--concurrency", "1",
              "--modes", ",".join(MODES), "--json", str(figures))
    rows = json.loads(figures.read_text())
    assert [r["mode"] for r in rows] == MODES
    for row in rows:
        for side in ("direct", "gateway"):
            assert row[side]["errors"] == 0, row
            assert row[side]["requests"] > 0, row
    assert "responses-stream: added first byte at c=1" in out
    assert "responses-chain: added p50 at c=1" in out

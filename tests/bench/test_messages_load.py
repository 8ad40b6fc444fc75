"""bench.load's /v1/messages modes still run end to end (briefly): every request of the chat
baseline and of the Messages side succeeded, streams to `message_stop`. No timing is
asserted here."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.test_bench_runs import run

MODES = ["messages", "messages-stream"]


def test_messages_modes_run(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    out = run("bench.load", "--duration", "0.3", "--warmup", "0.1", "--concurrency", "1",
              "--modes", ",".join(MODES), "--json", str(figures))
    rows = json.loads(figures.read_text())
    assert [r["mode"] for r in rows] == MODES
    for row in rows:
        for side in ("direct", "gateway"):
            assert row[side]["errors"] == 0, row
            assert row[side]["requests"] > 0, row
    assert "messages-stream: added first byte at c=1" in out
    assert "messages: added p50 at c=1" in out

"""bench.responses_stream_events still runs (briefly), and its `--against` check tells a
version that sends other bytes from one that sends the same. No timing is asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.pipeline.dialects import responses_stream
from tests.bench.test_bench_runs import ROOT


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.responses_stream_events",
                           "--streams", "50", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_every_case_is_timed_and_the_same_version_sends_the_same_bytes():
    done = bench("--against", responses_stream.__file__)
    assert done.returncode == 0, done.stderr
    assert "same bytes (text): 16 events" in done.stdout
    assert "same bytes (tools): 14 events" in done.stdout
    for case in ("chat (baseline)", "messages", "responses text", "responses tools",
                 "before: responses text", "before: responses tools"):
        assert f"\n{case} " in done.stdout


def test_a_version_that_sends_other_bytes_is_refused(tmp_path: Path):
    source = Path(responses_stream.__file__).read_text()
    changed = source.replace(""""logprobs":[]}""", """"logprobs":null}""")
    assert changed != source
    other = tmp_path / "responses_stream_other.py"
    other.write_text(changed)
    done = bench("--against", str(other))
    assert done.returncode == 1
    assert "the versions differ (tools=False)" in done.stderr

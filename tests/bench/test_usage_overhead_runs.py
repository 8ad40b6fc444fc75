"""bench.usage_overhead_runs: the p99 ratio of several benchmark runs taken together."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.usage_overhead_runs import across, main, settings_of, summarise, t975


def figure(concurrency: int, ratio: float | None, errors: int = 0, p50_ratio: float = 1.0,
           cpu: tuple[float, float] = (400.0, 410.0)) -> dict:
    return {"concurrency": concurrency, "p99_ratio": ratio, "interval": None, "errors": errors,
            "off": {"p50_ms": 1.0, "p99_ms": 2.0, "cpu_us_per_request": cpu[0]},
            "on": {"p50_ms": p50_ratio, "p99_ms": 2.0 * (ratio or 0),
                   "cpu_us_per_request": cpu[1]}}


def test_the_mean_is_geometric_and_the_interval_a_t_interval_on_the_logarithms():
    item = across(16, [figure(16, 1.0), figure(16, 1.1), figure(16, 1.21)])
    assert item.mean == pytest.approx(1.1)
    half = 4.303 * math.log(1.1) / math.sqrt(3)  # the logarithms' stdev is log 1.1
    assert item.interval == pytest.approx((1.1 * math.exp(-half), 1.1 * math.exp(half)))
    assert item.passed == 2 and not item.held  # the upper end is far past 1.10


def test_runs_that_agree_closely_below_the_target_pass():
    item = across(1, [figure(1, r, p50_ratio=1.02, cpu=(470, 480))
                   for r in (1.02, 1.04, 1.03, 1.05)])
    assert item.interval is not None and item.interval[1] < 1.07
    assert item.held and item.passed == 4
    assert item.p50_ratio == pytest.approx(1.02)
    assert (item.cpu_off, item.cpu_on) == (470, 480)


def test_one_run_gives_no_interval_and_no_verdict():
    item = across(64, [figure(64, 1.01)])
    assert item.interval is None and not item.held


def test_runs_with_errors_or_without_a_ratio_are_left_out_and_fail_the_verdict():
    item = across(1, [figure(1, 1.5, errors=3), figure(1, None), figure(1, 1.0),
                      figure(1, 1.0), figure(1, 1.0)])
    assert item.ratios == (1.0, 1.0, 1.0) and item.left_out == 2
    assert item.interval == pytest.approx((1.0, 1.0)) and not item.held
    nothing = across(1, [figure(1, None)])
    assert nothing.mean is None and nothing.left_out == 1 and not nothing.held


def test_each_concurrency_is_summarised_over_the_runs_that_measured_it():
    summary = summarise([[figure(1, 1.0), figure(64, 1.2)], [figure(1, 1.02)]])
    assert [(s.concurrency, len(s.ratios)) for s in summary] == [(1, 2), (64, 1)]


def test_t_quantiles():
    assert t975(1) == 12.706 and t975(4) == 2.776 and t975(30) == 2.042
    assert t975(45) == 2.021 and t975(60) == 2.000 and t975(200) == 1.96
    with pytest.raises(ValueError):
        t975(0)


def test_runs_measured_differently_are_not_combined():
    alike = {"rounds": 40, "noise_floor": False}
    runs = [[figure(1, 1.0) | {"settings": alike}], [figure(1, 1.0)],
            [figure(1, 1.0) | {"settings": alike}]]
    assert settings_of(runs) == [alike, None, alike]
    with pytest.raises(ValueError, match="different settings"):
        settings_of([*runs, [figure(1, 1.0) | {"settings": alike | {"noise_floor": True}}]])


def test_main_reads_the_json_files_and_exits_by_the_verdict(tmp_path: Path, capsys):
    passing = []
    for index, ratio in enumerate((1.01, 1.03, 1.02)):
        path = tmp_path / f"run{index}.json"
        path.write_text(json.dumps([figure(1, ratio)]))
        passing.append(str(path))
    assert main(passing) == 0
    assert "PASS" in capsys.readouterr().out
    missing = tmp_path / "slow.json"
    missing.write_text(json.dumps([figure(1, 1.3)]))
    assert main([*passing, str(missing)]) == 1
    broken = tmp_path / "errors.json"
    broken.write_text(json.dumps([figure(1, 1.0, errors=2)]))
    assert main([*passing, str(broken)]) == 1  # a run with errors fails the verdict
    assert "MISS" in capsys.readouterr().out

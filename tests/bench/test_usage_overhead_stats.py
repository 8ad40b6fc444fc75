"""bench.usage_overhead's statistics: the pooled p99 and the interval of its on/off ratio."""

from __future__ import annotations

import random

from bench.usage_overhead import _pooled_percentile, percentile, ratio_interval


def turns(seed: int, rounds: int = 30, scale: float = 1.0) -> list[list[float]]:
    draw = random.Random(seed)
    return [[draw.lognormvariate(0, 0.4) * scale for _ in range(500)] for _ in range(rounds)]


def test_the_pooled_percentile_is_the_percentile_of_all_values():
    off = turns(1)
    values = [v for turn in off for v in turn]
    expected = sorted(values)[int(0.99 * len(values))]
    assert percentile(values, 0.99) == expected
    assert _pooled_percentile([sorted(t, reverse=True) for t in off], 0.99) == expected
    assert percentile(values, 0.5) == sorted(values)[len(values) // 2]


def test_the_interval_holds_the_ratio_and_widens_with_noise():
    off = turns(2)
    slower = [[v * 1.2 for v in turn] for turn in off]
    low, high = ratio_interval(off, slower)
    assert abs(low - 1.2) < 1e-9 and abs(high - 1.2) < 1e-9  # every resample reads 1.2
    noisy = turns(3)  # independent of off: the ratio moves with the rounds drawn
    low, high = ratio_interval(off, noisy)
    point = _pooled_percentile([sorted(t, reverse=True) for t in noisy], 0.99) / \
        _pooled_percentile([sorted(t, reverse=True) for t in off], 0.99)
    assert low < point < high and high - low > 0.02


def test_no_interval_without_two_rounds_or_without_requests():
    assert ratio_interval(turns(4, rounds=1), turns(5, rounds=1)) is None
    assert ratio_interval([[], []], [[1.0], [1.0]]) is None

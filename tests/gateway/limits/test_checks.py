"""Checks are built from a key's limits; budget periods follow the UTC calendar."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.contracts.identity import Limits
from gateway.limits.checks import Scope, budget_window, charges_for, checks_for

WEDNESDAY_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()


def test_budget_periods():
    assert budget_window("b", "daily", WEDNESDAY_NOON)[0] == "b:budget:2026-11-25"
    assert budget_window("b", "daily", WEDNESDAY_NOON)[2] == 12 * 3600
    assert budget_window("b", "weekly", WEDNESDAY_NOON)[0] == "b:budget:2026-W48"
    assert budget_window("b", "weekly", WEDNESDAY_NOON)[2] == (4 * 24 + 12) * 3600
    assert budget_window("b", "monthly", WEDNESDAY_NOON)[0] == "b:budget:2026-11"
    assert budget_window("b", "month", WEDNESDAY_NOON)[0] == "b:budget:2026-11"
    assert budget_window("b", None, WEDNESDAY_NOON) == ("b:budget:total", None, None)


def test_checks_follow_the_limits_set():
    scope = Scope("api_key", "k1", "API key 'ci'",
                  Limits(rpm=10, rpd=100, tpm=1000, max_concurrent=3, budget_usd=5.0,
                         budget_period="monthly"))
    checks = checks_for(scope, "p:", WEDNESDAY_NOON, 600)
    assert [(c.kind, c.key.removeprefix("p:limits:api_key:k1:")) for c in checks] == [
        ("level", "budget:2026-11"), ("level", f"tpm:{int(WEDNESDAY_NOON // 60)}"),
        ("log", "rpm"), ("log", "rpd"), ("slot", "concurrent")]
    assert checks[0].code == "insufficient_quota"
    assert checks[0].label == "API key 'ci' has spent its monthly budget of $5"
    assert checks_for(Scope("api_key", "k", "k", Limits()), "p:", WEDNESDAY_NOON, 600) == []


def test_charges_only_for_limits_that_count_them():
    scope = Scope("virtual_key", "v", "vk", Limits(tpm=100))
    assert [a.amount for a in charges_for(scope, "p:", WEDNESDAY_NOON, 42, 0.5)] == [42]
    assert charges_for(scope, "p:", WEDNESDAY_NOON, 0, 0.5) == []

"""What one request must pass, as data: the checks made before it runs, the charges after.

Three kinds of check, the same in Redis and in process:

    log    a sliding window of admitted requests (rpm, rph, rpd): at most `limit` entries
           younger than `window` seconds; the oldest entry says when the next one fits
    slot   requests in flight: at most `limit` live entries, each expiring after `window`
           seconds so that a dead gateway's slots free themselves
    level  a running total (tokens this minute, USD this budget period) below `limit`,
           raised after each request by what it really used
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from gateway.contracts.identity import Limits

CheckKind = Literal["log", "slot", "level"]

_PERIODS = {"day": "daily", "week": "weekly", "month": "monthly"}
_LOG_WINDOWS = (("rpm", 60, "requests per minute"), ("rph", 3600, "requests per hour"),
                ("rpd", 86400, "requests per day"))


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose limits: an API key or a virtual key, by id, with a name fit for messages."""

    kind: Literal["api_key", "virtual_key"]
    id: str
    label: str
    limits: Limits


@dataclass(frozen=True, slots=True)
class Check:
    kind: CheckKind
    key: str
    limit: float
    window: float  # log: the window; slot: the slot's lifetime; level: unused
    label: str  # e.g. "API key 'ci' allows 60 requests per minute"
    code: str
    retry_after: float | None = None  # known in advance for level checks


@dataclass(frozen=True, slots=True)
class Add:
    """An amount charged to a level key after the request, with the key's lifetime."""

    key: str
    amount: float
    ttl: int | None


def base_key(prefix: str, scope: Scope) -> str:
    return f"{prefix}limits:{scope.kind}:{scope.id}"


def checks_for(scope: Scope, prefix: str, now: float, slot_ttl: int) -> list[Check]:
    """Budget first (its 429 says `insufficient_quota`), then tokens, requests, concurrency."""
    limits, base, who = scope.limits, base_key(prefix, scope), scope.label
    checks: list[Check] = []
    if limits.budget_usd is not None:
        key, _, left = budget_window(base, limits.budget_period, now)
        period = _PERIODS.get(limits.budget_period or "", limits.budget_period) or "total"
        checks.append(Check("level", key, limits.budget_usd, 0,
                            f"{who} has spent its {period} budget of ${limits.budget_usd:g}",
                            "insufficient_quota", left))
    if limits.tpm is not None:
        key, _, left = token_window(base, now)
        checks.append(Check("level", key, limits.tpm, 0,
                            f"{who} allows {limits.tpm} tokens per minute",
                            "rate_limit_exceeded", left))
    for field, window, what in _LOG_WINDOWS:
        limit = getattr(limits, field)
        if limit is not None:
            checks.append(Check("log", f"{base}:{field}", limit, window,
                                f"{who} allows {limit} {what}", "rate_limit_exceeded"))
    if limits.max_concurrent is not None:
        checks.append(Check("slot", f"{base}:concurrent", limits.max_concurrent, slot_ttl,
                            f"{who} allows {limits.max_concurrent} concurrent requests",
                            "rate_limit_exceeded"))
    return checks


def charges_for(scope: Scope, prefix: str, now: float, tokens: int, cost: float) -> list[Add]:
    limits, base = scope.limits, base_key(prefix, scope)
    adds: list[Add] = []
    if limits.tpm is not None and tokens > 0:
        key, minute_ttl, _ = token_window(base, now)
        adds.append(Add(key, tokens, minute_ttl))
    if limits.budget_usd is not None and cost > 0:
        key, period_ttl, _ = budget_window(base, limits.budget_period, now)
        adds.append(Add(key, cost, period_ttl))
    return adds


def token_window(base: str, now: float) -> tuple[str, int, float]:
    """This minute's token counter: (key, lifetime, seconds until the next minute)."""
    minute = int(now // 60)
    return f"{base}:tpm:{minute}", 120, (minute + 1) * 60 - now


def budget_window(base: str, period: str | None,
                  now: float) -> tuple[str, int | None, float | None]:
    """This period's spend counter (UTC calendar periods): (key, lifetime, seconds left)."""
    period = _PERIODS.get(period or "", period)
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start, end = day, day + timedelta(days=1)
        name = start.strftime("%Y-%m-%d")
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
        name = start.strftime("%G-W%V")
    elif period == "monthly":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        name = start.strftime("%Y-%m")
    else:
        return f"{base}:budget:total", None, None
    left = (end - moment).total_seconds()
    return f"{base}:budget:{name}", int(left) + 3600, left

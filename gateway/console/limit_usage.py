"""Each key's limits beside what its counters hold now, read from the limiter."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from gateway.db.redis_link import StoreUnavailable
from gateway.limits.checks import Scope
from gateway.pipeline.services import Services
from gateway.store.limits import limits_of


@dataclass(frozen=True, slots=True)
class LimitUse:
    what: str  # "requests per minute", "spend this month", ...
    used: float
    limit: float
    money: bool = False

    @property
    def percent(self) -> float:
        return min(self.used / self.limit * 100, 100.0) if self.limit else 0.0


_NAMES = {"rpm": "requests / minute", "rph": "requests / hour", "rpd": "requests / day",
          "concurrent": "in flight", "tpm": "tokens this minute"}
_PERIOD = {"daily": "spend today", "weekly": "spend this week", "monthly": "spend this month"}


def limit_label(key: str, period: str | None) -> str:
    parts = key.split(":")
    if "budget" in parts:
        return _PERIOD.get(period or "", "spend (total)")
    if "tpm" in parts:
        return _NAMES["tpm"]
    return _NAMES.get(parts[-1], parts[-1])


async def usage_of(services: Services, kind: Literal["api_key", "virtual_key"],
                   row: Any) -> list[LimitUse] | None:
    """None when the counters cannot be read (Redis down)."""
    limits = limits_of(row)
    if services.limiter is None:
        return None
    scope = Scope(kind, row.id, row.id, limits)
    try:
        pairs = await services.limiter.usage(scope, time.time())
    except StoreUnavailable:
        return None
    return [LimitUse(limit_label(check.key, limits.budget_period), used, check.limit,
                     money=check.code == "insufficient_quota") for check, used in pairs]

"""Limits in the portkey-ai SDK's shapes (`rate_limits`, `usage_limits`) and as table columns.

    rate_limits  = [{"type": "requests" | "tokens" | "concurrency", "unit": "rpm" | "rph" | "rpd",
                     "value": N}, ...]
    usage_limits = {"credit_limit": USD, "periodic_reset": "daily" | "weekly" | "monthly" | None}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.contracts.identity import Limits

# (type, unit) -> column; concurrency has no unit.
_RATE_COLUMNS: dict[tuple[str, str | None], str] = {
    ("requests", "rpm"): "rpm",
    ("requests", "rph"): "rph",
    ("requests", "rpd"): "rpd",
    ("tokens", "rpm"): "tpm",
    ("concurrency", None): "max_concurrent",
}
LIMIT_COLUMNS = ("rpm", "rph", "rpd", "tpm", "max_concurrent", "budget_usd", "budget_period")


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["requests", "tokens", "concurrency"]
    unit: Literal["rpm", "rph", "rpd"] | None = None
    value: int = Field(gt=0)


class UsageLimits(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the SDK may send alert_threshold and the like
    credit_limit: float | None = Field(None, gt=0)
    periodic_reset: Literal["daily", "weekly", "monthly"] | None = None


def limit_columns(rate_limits: list[RateLimit] | None,
                  usage_limits: UsageLimits | None) -> dict[str, Any]:
    """Column values for the limits given; a list or object given replaces all of its kind."""
    columns: dict[str, Any] = {}
    if rate_limits is not None:
        columns.update(dict.fromkeys(("rpm", "rph", "rpd", "tpm", "max_concurrent")))
        for limit in rate_limits:
            unit = None if limit.type == "concurrency" else (limit.unit or "rpm")
            column = _RATE_COLUMNS.get((limit.type, unit))
            if column is None:
                raise ValueError(f"rate limit of type '{limit.type}' per '{unit}' is not "
                                 "supported; tokens are limited per minute (unit 'rpm')")
            columns[column] = limit.value
    if usage_limits is not None:
        columns["budget_usd"] = usage_limits.credit_limit
        columns["budget_period"] = usage_limits.periodic_reset if usage_limits.credit_limit \
            else None
    return columns


def limits_of(row: Any) -> Limits:
    return Limits(**{name: getattr(row, name) for name in LIMIT_COLUMNS})


def rate_limits_view(row: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for (kind, unit), column in _RATE_COLUMNS.items():
        value = getattr(row, column)
        if value is not None:
            out.append({"type": kind, **({"unit": unit} if unit else {}), "value": value})
    return out


def usage_limits_view(row: Any) -> dict[str, Any] | None:
    if row.budget_usd is None:
        return None
    return {"credit_limit": row.budget_usd, "periodic_reset": row.budget_period}

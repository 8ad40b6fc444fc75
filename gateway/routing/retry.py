"""How long to wait before the next retry: exponential backoff with jitter, or Retry-After."""

from __future__ import annotations

import random

from gateway.contracts.plan import RetryPolicy
from gateway.errors import GatewayError
from gateway.settings import Settings


def retry_after_seconds(headers: dict[str, str]) -> float | None:
    """The upstream's requested wait, from retry-after-ms or Retry-After (seconds)."""
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001),
                        ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP date: fall back to backoff
    return None


def backoff_seconds(settings: Settings, retry_number: int, roll: float) -> float:
    """Full-jitter exponential backoff: uniform in [base*2^n / 2, base*2^n], capped."""
    growth = 1 << retry_number  # 2**n, as an int (`int ** int` may be a float, so mypy: Any)
    ceiling = min(settings.retry_backoff_max_ms, settings.retry_backoff_base_ms * growth)
    return ceiling * (0.5 + roll / 2) / 1000


def retry_delay(settings: Settings, policy: RetryPolicy, exc: GatewayError,
                retry_number: int) -> float | None:
    """Seconds to wait; None when the upstream asks for longer than the gateway will wait."""
    if policy.use_retry_after_header:
        wait = retry_after_seconds({k.lower(): v for k, v in exc.headers.items()})
        if wait is not None:
            return wait if wait * 1000 <= settings.retry_budget_ms else None
    return backoff_seconds(settings, retry_number, random.random())

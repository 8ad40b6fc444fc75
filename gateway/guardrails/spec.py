"""What the registry says of one check: its parameters, its function, how it is prepared.

Kept apart from registry.py (which imports every check) and hooks.py (which every check
imports), so that a `Check` can carry its spec without the two importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.guardrails.parameters import Param, Problem


@dataclass(frozen=True, slots=True)
class CheckSpec:
    # (check, subject) -> CheckOutcome; with `io`, (check, subject, outbound) -> awaitable.
    run: Callable[..., Any]
    params: Mapping[str, Param] = field(default_factory=dict)
    io: bool = False  # `run` is a coroutine that calls out (takes the runner's Outbound)
    prepare: Callable[[Mapping[str, Any]], Any] | None = None  # once per config
    problems: Callable[[Mapping[str, Any]], list[Problem]] | None = None  # across parameters

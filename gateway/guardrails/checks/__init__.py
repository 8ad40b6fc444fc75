"""The built-in `default.*` checks, one module per family; registry.py lists them all.

A check is a function of (check, subject) returning a CheckOutcome. Synchronous checks do no
I/O and are pure in their inputs; the two that call out (webhook, log) are coroutines that
also receive the runner's `Outbound`. Verdicts, `data` and error messages follow Portkey's
plugins (plugins/default/*.ts), so its tests' expectations hold here.
"""

from __future__ import annotations

from typing import Any

from gateway.guardrails.results import CheckError, CheckOutcome

EXCERPT_CHARS = 100


def excerpt(text: str | None) -> str:
    """Portkey's `textExcerpt`: the first 100 characters, `...` when cut."""
    if not text:
        return "No text available"
    return text[:EXCERPT_CHARS] + "..." if len(text) > EXCERPT_CHARS else text


def failed(message: str, data: Any, name: str = "Error") -> CheckOutcome:
    """A check that could not run: verdict false with an error (fail-open unless failOnError)."""
    return CheckOutcome(False, data, CheckError(message, name))


def flip(condition: bool, invert: bool) -> bool:
    """Portkey's `not` parameter: `not ? !condition : condition`."""
    return not condition if invert else condition

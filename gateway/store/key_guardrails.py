"""Operators' default guardrails on API keys and virtual keys: every request made with the key
runs them after its config's own hooks, and no client config removes them.

Stored as the admin gave them (JSON lists of Portkey's shorthand or full hook objects, the
columns `default_input_guardrails` / `default_output_guardrails`), validated when saved with
the config parser (a 400 naming the path), and parsed into a `HookSet` once per resolver
cache fill, not per request.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from pydantic import AliasChoices, Field

from gateway.errors import InvalidRequest
from gateway.guardrails.config import DEFAULTS, parse_key_defaults
from gateway.guardrails.hooks import AFTER, BEFORE, NO_HOOKS, Hook, HookSet
from gateway.routing.shape import MAX_CONFIG_BYTES

INPUT, OUTPUT = "default_input_guardrails", "default_output_guardrails"
COLUMNS = (INPUT, OUTPUT)


def payload_field(name: str, camel_case: bool = False) -> Any:
    """The pydantic field of one list: any JSON (the parser names every problem)."""
    if not camel_case:
        return Field(None)
    camel = "".join(part.title() if i else part for i, part in enumerate(name.split("_")))
    return Field(None, validation_alias=AliasChoices(name, camel))


class GuardedRow(Protocol):
    default_input_guardrails: list[Any] | None
    default_output_guardrails: list[Any] | None


def check(values: dict[str, Any]) -> None:
    """Refuse invalid lists among `values` (admin payload columns): one 400 naming every path."""
    problems: list[str] = []
    for name in COLUMNS:
        raw = values.get(name)
        if raw is None:
            continue
        size = len(orjson.dumps(raw))
        if size > MAX_CONFIG_BYTES:
            problems.append(f"{name}: {size} bytes, over the cap of {MAX_CONFIG_BYTES} bytes")
            continue
        problems += parse_key_defaults(name, raw)[1]
    if problems:
        error = InvalidRequest("invalid guardrails: " + "; ".join(problems),
                               param=problems[0].split(": ", 1)[0], code="invalid_guardrails")
        error.extra["errors"] = problems
        raise error


def hooks_of(row: GuardedRow) -> tuple[HookSet, list[str]]:
    """The row's default hooks, and the problems that stop them from being run (none unless
    the row was written around the admin API or by an older gateway that accepted more)."""
    problems: list[str] = []
    phases: dict[str, tuple[Hook, ...]] = {BEFORE: (), AFTER: ()}
    for name in COLUMNS:
        raw = getattr(row, name)
        if raw:
            hooks, found = parse_key_defaults(name, raw)
            phases[DEFAULTS[name]] = hooks
            problems += found
    if not (phases[BEFORE] or phases[AFTER]):
        return NO_HOOKS, problems
    return HookSet(phases[BEFORE], phases[AFTER]), problems


def view(row: GuardedRow) -> dict[str, Any]:
    return {INPUT: row.default_input_guardrails, OUTPUT: row.default_output_guardrails}

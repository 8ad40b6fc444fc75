"""Checks on a config's raw JSON before the model reads it: caps, then unknown keys.

Both run on every config, inline or saved, at use and when saved. The caps come first and stop
at the first one exceeded, so a 10,000-target config costs a length check, not a validation.
An unknown key is a 400 naming it and the closest known key: a typo such as `custom_hst`
must never send the request, and the key, to the provider's public host.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic.alias_generators import to_camel

from gateway.errors import InvalidRequest
from providers import REGISTRY

# Caps on one config (README "Bounded work per request").
MAX_CONFIG_BYTES = 64 * 1024  # the x-portkey-config text, or a saved config as JSON
MAX_TARGETS_PER_NODE = 50
MAX_LEAVES = 100
MAX_DEPTH = 10  # the root is depth 1
# Upstream calls one request may make, retries and fallbacks counted together (execute.py).
MAX_UPSTREAM_ATTEMPTS = 20


def _spellings(names: Iterable[str]) -> dict[str, str]:
    """Each snake_case name and its camelCase form, mapped to the snake_case name."""
    return {form: name for name in names for form in (name, to_camel(name))}


_NODE_KEYS = _spellings((
    "strategy", "targets", "name", "weight", "provider", "api_key", "virtual_key",
    "override_params", "retry", "cache", "request_timeout", "custom_host", "forward_headers",
    # Accepted and not acted on: answers are always OpenAI-compliant (see docs/decisions.md).
    "strict_open_ai_compliance",
    # Guardrails: validated key by key, with their paths, by gateway/guardrails/config.py.
    "input_guardrails", "output_guardrails", "before_request_hooks", "after_request_hooks",
    "input_mutators", "output_mutators", "default_input_guardrails",
    "default_output_guardrails",
))
_STRATEGY_KEYS = _spellings(("mode", "on_status_codes", "conditions", "default"))
_RETRY_KEYS = _spellings(("attempts", "on_status_codes", "use_retry_after_header"))
_CACHE_KEYS = _spellings(("mode", "max_age"))
_CONDITION_KEYS = _spellings(("query", "then"))
# Portkey's config names for options whose header names differ.
_OPTION_ALIASES = {
    "resource_name": "azure-resource-name",
    "deployment_id": "azure-deployment-id",
    "api_version": "azure-api-version",
}
# Config key (snake_case or camelCase) -> the x-portkey-* header suffix of the option.
OPTION_KEYS: dict[str, str] = {
    form: header
    for name, header in {
        **{h.replace("-", "_"): h for a in REGISTRY.values() for h in a.header_options},
        **_OPTION_ALIASES,
    }.items()
    for form in (name, to_camel(name))
}
# What an unknown node key is compared with: the snake_case spellings.
_SUGGESTIONS = [k for k, v in _NODE_KEYS.items() if k == v] + [
    k for k in OPTION_KEYS if "_" in k or k.islower()]
# Keys whose meaning lives elsewhere: said outright, since no spelling is close.
_HINTS = {
    "retries": "retry",
    "on_status_codes": "strategy.on_status_codes",
    "onStatusCodes": "strategy.on_status_codes",
}


def _cap(problem: str) -> InvalidRequest:
    return InvalidRequest(f"invalid config: {problem} (see README: Bounded work per request)",
                          param="x-portkey-config", code="config_too_large")


def check_size(length: int) -> None:
    if length > MAX_CONFIG_BYTES:
        raise _cap(f"config: {length} bytes, over the cap of {MAX_CONFIG_BYTES} bytes")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unknown(path: str, key: str, known: Iterable[str]) -> str:
    where = _join(path, str(key))
    hint = _HINTS.get(key)
    if hint is None:
        close = difflib.get_close_matches(str(key), list(known), n=1)
        hint = close[0] if close else None
    return f"{where}: unknown key" + (f"; did you mean '{hint}'?" if hint else "")


def _keys(data: Any, path: str, known: dict[str, str]) -> list[str]:
    if not isinstance(data, dict):
        return []  # the model reports the wrong type
    snake = [k for k, v in known.items() if k == v]
    return [_unknown(path, k, snake) for k in data if k not in known]


def _node_problems(node: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    provider = node.get("provider")
    adapter = REGISTRY.get(provider) if isinstance(provider, str) else None
    own = adapter.header_options if adapter is not None else None
    is_leaf = "targets" not in node
    for key, value in node.items():
        where = _join(path, str(key))
        if key in _NODE_KEYS:
            continue
        if key in OPTION_KEYS:
            problems += _option_problems(where, OPTION_KEYS[key], value, is_leaf, own, provider)
        else:
            problems.append(_unknown(path, key, _SUGGESTIONS))
    strategy = node.get("strategy")
    problems += _keys(strategy, _join(path, "strategy"), _STRATEGY_KEYS)
    if isinstance(strategy, dict) and isinstance(strategy.get("conditions"), list):
        for i, condition in enumerate(strategy["conditions"]):
            problems += _keys(condition, f"{_join(path, 'strategy.conditions')}[{i}]",
                              _CONDITION_KEYS)
    problems += _keys(node.get("retry"), _join(path, "retry"), _RETRY_KEYS)
    problems += _keys(node.get("cache"), _join(path, "cache"), _CACHE_KEYS)
    return problems


def _option_problems(where: str, header: str, value: Any, is_leaf: bool,
                     own: tuple[str, ...] | None, provider: str | None) -> list[str]:
    if not is_leaf:
        return [f"{where}: a provider option belongs on a target, not on a strategy node"]
    if own is not None and header not in own:
        names = ", ".join(sorted(h.replace("-", "_") for h in own)) or "none"
        return [f"{where}: not an option of provider '{provider}' (its options: {names})"]
    if not isinstance(value, str) and not (header.endswith("-json") and isinstance(value, dict)):
        return [f"{where}: must be a string"]
    return []


def shape_problems(data: dict[str, Any]) -> list[str]:
    """Every unknown key in the tree; raises at once when a cap is exceeded."""
    problems: list[str] = []
    leaves = 0
    stack: list[tuple[dict[str, Any], str, int]] = [(data, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        targets = node.get("targets")
        if isinstance(targets, list):
            where = _join(path, "targets")
            if len(targets) > MAX_TARGETS_PER_NODE:
                raise _cap(f"{where}: {len(targets)} targets, over the cap of "
                           f"{MAX_TARGETS_PER_NODE} targets per node")
            if targets and depth >= MAX_DEPTH:
                raise _cap(f"{where}: nested deeper than the cap of {MAX_DEPTH} levels")
            stack.extend((child, f"{where}[{i}]", depth + 1)
                         for i, child in reversed(list(enumerate(targets)))
                         if isinstance(child, dict))
        else:
            leaves += 1
            if leaves > MAX_LEAVES:
                raise _cap(f"config: more than the cap of {MAX_LEAVES} targets in all "
                           "(leaves of the tree)")
        problems += _node_problems(node, path)
    return problems

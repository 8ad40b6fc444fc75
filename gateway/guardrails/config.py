"""The config contract: a node's guardrail keys, parsed into Hooks with every problem named.

Keys (any node of the target tree; snake_case, camelCase accepted by the config model):
`before_request_hooks` / `after_request_hooks` (full hook objects), `input_guardrails` /
`output_guardrails` / `input_mutators` / `output_mutators` (Portkey's shorthand), and, at the
root only, `default_input_guardrails` / `default_output_guardrails` (shorthand, appended to
every target's hooks). A node's before-request list is its full hooks, then its input
guardrails, then its input mutators (Portkey's order); the same after the request. API keys'
and virtual keys' default lists (`parse_key_defaults`) may mix both forms.

Shorthand (`convertHooksShorthand`): each object is one hook; its hook-level keys (`deny`,
`on_fail`, `on_success`, `async`, `id`, `type`, `sequential`) move onto the hook, and every
other key is a check whose value is its parameters (`"contains"` means `"default.contains"`).

Problems are returned with paths relative to the node, e.g.
`input_guardrails[0].default.contains.words: is required` or
`before_request_hooks[1].checks[2].parameters.rule: invalid regular expression: ...`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import InvalidRequest
from gateway.guardrails import parameters
from gateway.guardrails.hooks import (
    AFTER,
    BEFORE,
    GUARDRAIL,
    MUTATOR,
    Check,
    Feedback,
    Hook,
    HookSet,
    HookType,
    NodeHooks,
    Phase,
)
from gateway.guardrails.registry import CHECKS, NOT_RUN

# Caps on one list of hooks (README "Bounded work per request"): every check of a list may
# run on every request, and each regex on the whole text.
MAX_HOOKS_PER_LIST = 16
MAX_CHECKS_PER_LIST = 32
MAX_REGEX_PROGRAM_PER_LIST = 2000  # RE2 instructions of the rules a list's checks supply

# key -> (phase, hook type, shorthand id prefix); full-form lists have no type or prefix.
SHORTHAND = {
    "input_guardrails": (BEFORE, GUARDRAIL, "input"),
    "input_mutators": (BEFORE, MUTATOR, "input"),
    "output_guardrails": (AFTER, GUARDRAIL, "output"),
    "output_mutators": (AFTER, MUTATOR, "output"),
}
FULL = {"before_request_hooks": BEFORE, "after_request_hooks": AFTER}
DEFAULTS = {"default_input_guardrails": BEFORE, "default_output_guardrails": AFTER}
# The order a node's lists are joined in, per phase.
ORDER = {BEFORE: ("before_request_hooks", "input_guardrails", "input_mutators"),
         AFTER: ("after_request_hooks", "output_guardrails", "output_mutators")}
KEYS = (*FULL, *SHORTHAND, *DEFAULTS)

_HOOK_LEVEL = {"deny": "deny", "async": "async", "sequential": "sequential", "id": "id",
               "type": "type", "on_fail": "on_fail", "onFail": "on_fail",
               "on_success": "on_success", "onSuccess": "on_success",
               "guardrail_version_id": "guardrail_version_id",
               "guardrailVersionId": "guardrail_version_id"}
_FULL_KEYS = {**_HOOK_LEVEL, "checks": "checks"}
_CHECK_KEYS = ("id", "parameters", "is_enabled")


def parse_node(lists: Mapping[str, Any]) -> tuple[NodeHooks, list[str]]:
    """A node's hooks from its raw lists (absent keys: None), and every problem found."""
    problems: list[str] = []
    phases: dict[Phase, tuple[Hook, ...] | None] = {}
    for phase, keys in ORDER.items():
        present = [key for key in keys if lists.get(key) is not None]
        hooks: list[Hook] = []
        for key in present:
            hooks += _parse_list(key, lists[key], problems)
        problems += _list_caps(present[0] if present else "", hooks)
        phases[phase] = tuple(hooks) if present else None
    defaults: dict[Phase, tuple[Hook, ...]] = {BEFORE: (), AFTER: ()}
    for key, phase in DEFAULTS.items():
        if lists.get(key) is not None:
            defaults[phase] = tuple(_parse_list(key, lists[key], problems))
            problems += _list_caps(key, defaults[phase])
    node = NodeHooks(phases[BEFORE], phases[AFTER], HookSet(defaults[BEFORE], defaults[AFTER]))
    return node, problems


def parse_header(text: str, phase: Phase, header: str) -> tuple[Hook, ...]:
    """`x-portkey-default-input-guardrails` and its output twin: a JSON array of shorthand."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"{header} must be a JSON array of guardrails", param=header,
                             code="invalid_guardrails") from None
    key = "default_input_guardrails" if phase == BEFORE else "default_output_guardrails"
    problems: list[str] = []
    hooks = _parse_list(key, raw, problems)
    problems += _list_caps(key, hooks)
    if problems:
        shown = [p.replace(key, header, 1) for p in problems]
        error = InvalidRequest(f"invalid {header}: " + "; ".join(shown), param=header,
                               code="invalid_guardrails")
        error.extra["errors"] = shown
        raise error
    return tuple(hooks)


def parse_key_defaults(key: str, raw: Any) -> tuple[tuple[Hook, ...], list[str]]:
    """An API key's or a virtual key's `default_input_guardrails` / `default_output_guardrails`
    (admin API, CLI, resolver): a list whose items are shorthand hooks or, when they hold
    `checks`, full hook objects, parsed as a config's; problems name `<key>[i]...`."""
    problems: list[str] = []
    hooks = _parse_list(key, raw, problems, either_form=True)
    problems += _list_caps(key, hooks)
    return tuple(hooks), problems


def _parse_list(key: str, raw: Any, problems: list[str], either_form: bool = False,
                ) -> list[Hook]:
    if not isinstance(raw, list):
        problems.append(f"{key}: must be a list of hooks")
        return []
    if len(raw) > MAX_HOOKS_PER_LIST:
        problems.append(f"{key}: {len(raw)} hooks, over the cap of {MAX_HOOKS_PER_LIST} "
                        "(see README: Bounded work per request)")
        return []
    phase = FULL.get(key) or DEFAULTS.get(key) or SHORTHAND[key][0]
    hooks = []
    for i, item in enumerate(raw):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object")
            continue
        full = key in FULL or (either_form and "checks" in item)
        hook = (_full_hook(item, where, problems) if full
                else _shorthand_hook(item, where, key, phase, problems))
        if hook is not None:
            hooks.append(hook)
    return hooks


def _list_caps(key: str, hooks: list[Hook] | tuple[Hook, ...]) -> list[str]:
    checks = [c for h in hooks for c in h.checks]
    if len(checks) > MAX_CHECKS_PER_LIST:
        return [f"{key}: {len(checks)} checks in one phase, over the cap of "
                f"{MAX_CHECKS_PER_LIST} (see README: Bounded work per request)"]
    total = sum(c.compiled.programsize for c in checks if c.id == "default.regexMatch") + sum(
        r.pattern.programsize for c in checks if c.id == "default.regexReplace"
        for r in c.compiled if r.kind == "rule")
    if total > MAX_REGEX_PROGRAM_PER_LIST:
        return [f"{key}: the rules total {total} RE2 instructions in one phase, over the cap "
                f"of {MAX_REGEX_PROGRAM_PER_LIST} (see README: Bounded work per request)"]
    return []


def _hook_fields(raw: Mapping[str, Any], where: str, problems: list[str],
                 default_type: HookType | None) -> dict[str, Any] | None:
    """The hook-level fields, validated; None when one is unusable."""
    before = len(problems)
    fields: dict[str, Any] = {}
    for key, name in _HOOK_LEVEL.items():
        if key in raw:
            fields[name] = raw[key]
    for name in ("deny", "async", "sequential"):
        if not isinstance(fields.get(name, False), bool):
            problems.append(f"{where}.{name}: must be true or false")
    kind = fields.setdefault("type", default_type)
    if kind is None:
        problems.append(f"{where}.type: is required ('guardrail' or 'mutator')")
    elif kind not in (GUARDRAIL, MUTATOR):
        problems.append(f"{where}.type: must be 'guardrail' or 'mutator'")
    if not isinstance(fields.get("id", ""), str) or fields.get("id") == "":
        problems.append(f"{where}.id: must be a non-empty string")
    if "guardrail_version_id" in fields:
        problems.append(f"{where}.guardrail_version_id: guardrails saved in Portkey's cloud "
                        "are not available here; list the checks in the hook instead")
    for name in ("on_fail", "on_success"):
        if name in fields:
            fields[name] = _feedback(fields[name], f"{where}.{name}", problems)
    return fields if len(problems) == before else None


def _feedback(raw: Any, where: str, problems: list[str]) -> Feedback | None:
    if not isinstance(raw, dict) or set(raw) - {"feedback"}:
        problems.append(f"{where}: must be an object with a 'feedback' object")
        return None
    feedback = raw.get("feedback")
    if feedback is None:
        return None
    if not isinstance(feedback, dict) or set(feedback) - {"value", "weight", "metadata"} \
            or not all(isinstance(feedback.get(k, 0), int | float)
                       and not isinstance(feedback.get(k), bool) for k in ("value", "weight")) \
            or not isinstance(feedback.get("metadata", {}), dict):
        problems.append(f"{where}.feedback: must be {{value: number, weight: number, "
                        "metadata: object}")
        return None
    return Feedback(feedback.get("value"), feedback.get("weight"),
                    feedback.get("metadata") or {})


def _make_hook(fields: Mapping[str, Any], checks: list[Check], hook_id: str) -> Hook:
    return Hook(id=fields.get("id") or hook_id, type=fields["type"], checks=tuple(checks),
                deny=fields.get("deny", False), is_async=fields.get("async", False),
                sequential=fields.get("sequential", False), on_fail=fields.get("on_fail"),
                on_success=fields.get("on_success"))


def _full_hook(raw: Mapping[str, Any], where: str, problems: list[str]) -> Hook | None:
    problems += [_unknown_key(f"{where}.{key}", key, _FULL_KEYS) for key in raw
                 if key not in _FULL_KEYS]
    fields = _hook_fields(raw, where, problems, None)
    listed = raw.get("checks")
    if not isinstance(listed, list) or not listed:
        problems.append(f"{where}.checks: must be a non-empty list of checks")
        return None
    checks = []
    for i, entry in enumerate(listed):
        at = f"{where}.checks[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{at}: must be an object {{id, parameters, is_enabled}}")
            continue
        problems += [_unknown_key(f"{at}.{key}", key, _CHECK_KEYS) for key in entry
                     if key not in _CHECK_KEYS]
        enabled = entry.get("is_enabled", True)
        if not isinstance(enabled, bool):
            problems.append(f"{at}.is_enabled: must be true or false")
        check = _check(entry.get("id"), entry.get("parameters", {}), f"{at}.id",
                       f"{at}.parameters", problems)
        if check is not None:
            checks.append(_enabled(check, enabled is not False))
    if fields is None or len(checks) != len(listed):
        return None
    return _make_hook(fields, checks, _generated_id(where, raw, "hook"))


def _shorthand_hook(raw: Mapping[str, Any], where: str, key: str, phase: Phase,
                    problems: list[str]) -> Hook | None:
    kind: HookType = SHORTHAND[key][1] if key in SHORTHAND else GUARDRAIL
    fields = _hook_fields(raw, where, problems, kind)
    named = [k for k in raw if k not in _HOOK_LEVEL]
    if not named:
        problems.append(f"{where}: names no check (e.g. {{\"default.contains\": "
                        "{\"words\": [...], \"operator\": \"none\"}})")
        return None
    checks = []
    for name in named:
        at = f"{where}.{name}"
        params = raw[name]
        if not isinstance(params, dict):
            problems.append(f"{at}: must be an object of the check's parameters")
            continue
        check_id = params.get("id", name)
        check = _check(check_id, params, at, at, problems)
        if check is not None:
            checks.append(_enabled(check, params.get("is_enabled") is not False))
    if fields is None or len(checks) != len(named):
        return None
    prefix = "input" if phase == BEFORE else "output"
    return _make_hook(fields, checks, _generated_id(where, raw, f"{prefix}_guardrail"))


def _enabled(check: Check, enabled: bool) -> Check:
    if enabled:
        return check
    return Check(check.id, check.params, check.spec, False, check.fail_on_error,
                 check.compiled)


def _check(raw_id: Any, raw_params: Any, id_at: str, params_at: str,
           problems: list[str]) -> Check | None:
    if not isinstance(raw_id, str) or not raw_id:
        problems.append(f"{id_at}: must name a check, e.g. 'default.contains'")
        return None
    check_id = raw_id if "." in raw_id else f"default.{raw_id}"
    spec = CHECKS.get(check_id)
    if spec is None:
        problems.append(f"{id_at}: {_unknown_check(check_id)}")
        return None
    if not isinstance(raw_params, dict):
        problems.append(f"{params_at}: must be an object")
        return None
    params, found = parameters.validate(spec.params, raw_params)
    if not found and spec.problems is not None:
        found = spec.problems(params)
    if found:
        problems += [f"{params_at}.{name}: {message}" for name, message in found]
        return None
    compiled = spec.prepare(params) if spec.prepare is not None else None
    return Check(check_id, params, spec, fail_on_error=params["failOnError"],
                 compiled=compiled)


def _unknown_check(check_id: str) -> str:
    if check_id in NOT_RUN:
        return f"'{check_id}' {NOT_RUN[check_id]}"
    if not check_id.startswith("default."):
        return (f"unknown check '{check_id}': this gateway runs the built-in default.* "
                "checks only")
    by_lower = {known.lower(): known for known in CHECKS}
    close = by_lower.get(check_id.lower()) or next(
        iter(difflib.get_close_matches(check_id, list(CHECKS), n=1)), None)
    hint = f"; did you mean '{close}'?" if close else ""
    return f"unknown check '{check_id}'{hint}"


def _unknown_key(where: str, key: str, known: Any) -> str:
    close = difflib.get_close_matches(str(key), [k for k in known if "_" in k or k.islower()],
                                      n=1)
    return f"{where}: unknown key" + (f"; did you mean '{close[0]}'?" if close else "")


def _generated_id(where: str, raw: Mapping[str, Any], prefix: str) -> str:
    """Portkey draws 3 random base-36 characters; these are derived from the hook, so the
    same config always names its hooks the same (logs and results can be compared)."""
    try:
        text = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer past 64 bits
        text = json.dumps(raw, sort_keys=True, default=str).encode()
    digest = hashlib.sha256(where.encode() + text)
    number = int.from_bytes(digest.digest()[:4], "big")
    chars = ""
    for _ in range(3):
        number, rest = divmod(number, 36)
        chars += "0123456789abcdefghijklmnopqrstuvwxyz"[rest]
    return f"{prefix}_{chars}"


"""Conditional routing: evaluate `{query, then}` conditions against a request.

Queries are MongoDB-style. Keys are dotted paths of any depth into `metadata.*`, `params.*`
(the request body) and `url.pathname`; a plain value means equality; an object holds
operators, every one of which must pass (unlike Portkey, none returns early). `$and` and `$or`
take lists of queries and combine with their sibling keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.errors import InvalidRequest
from gateway.regex import safe_regex

_MISSING = object()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(check: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def compare(value: Any, operand: Any) -> bool:
        left, right = _number(value), _number(operand)
        return left is not None and right is not None and check(left, right)
    return compare


def _regex(value: Any, operand: Any) -> bool:
    """RE2, so linear in the value; validation compiled (and cached) the pattern already."""
    if not isinstance(operand, str):  # a config that skipped validation
        raise InvalidRequest("$regex must be a string", param="x-portkey-config",
                             code="invalid_config")
    if not isinstance(value, str):
        return False
    try:
        return safe_regex.search(operand, value)
    except safe_regex.RegexError as exc:  # a config that skipped validation
        raise InvalidRequest(f"$regex {exc}", param="x-portkey-config",
                             code="invalid_config") from None


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda value, operand: value is not _MISSING and value == operand,
    "$ne": lambda value, operand: value != operand,
    "$gt": _compare(lambda a, b: a > b),
    "$gte": _compare(lambda a, b: a >= b),
    "$lt": _compare(lambda a, b: a < b),
    "$lte": _compare(lambda a, b: a <= b),
    "$in": lambda value, operand: value is not _MISSING and value in operand,
    "$nin": lambda value, operand: value not in operand,
    "$regex": _regex,
}
LOGICAL = ("$and", "$or")
# Caps on one query (README "Bounded work per request"): `$and`/`$or` nesting, the query itself
# being level 1, and keys plus operators counted over the whole query.
MAX_QUERY_DEPTH = 10
MAX_QUERY_OPERATORS = 100
# The RE2 instructions (safe_regex.program_size) of all `$regex` operands of one config together:
# every condition may run on a request, each match costing up to a few ms at the largest size.
MAX_REGEX_PROGRAM_TOTAL = 1000


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """Follow a dotted path through nested objects; `_MISSING` when any step is absent."""
    value: Any = context
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def matches(query: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """True when every key of the query holds; all of them are evaluated."""
    results = []
    for key, expected in query.items():
        if key == "$and":
            results.append(all(matches(q, context) for q in expected))
        elif key == "$or":
            results.append(any(matches(q, context) for q in expected))
        else:
            results.append(_field_matches(lookup(context, key), expected))
    return all(results)


def _field_matches(value: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping) and expected and all(k.startswith("$") for k in expected):
        return all(OPERATORS[op](value, operand) for op, operand in expected.items())
    return value is not _MISSING and value == expected


def query_problems(query: Any, path: str) -> list[str]:
    """Validation, run once per config: unknown operators, bad operands, bad regexes, size."""
    count = [0]
    problems = _query_problems(query, path, 1, count)
    if count[0] > MAX_QUERY_OPERATORS:
        problems.append(f"{path}: more than {MAX_QUERY_OPERATORS} keys and operators, the "
                        "cap (see README: Bounded work per request)")
    return problems


def regex_program_total(query: Any) -> int:
    """RE2 instructions of the query's `$regex` operands; for a query that passed validation."""
    if not isinstance(query, Mapping):
        return 0
    total = 0
    for key, expected in query.items():
        if key in LOGICAL and isinstance(expected, list):
            total += sum(regex_program_total(sub) for sub in expected)
        elif isinstance(expected, Mapping) and isinstance(expected.get("$regex"), str):
            total += safe_regex.program_size(expected["$regex"])
    return total


def _query_problems(query: Any, path: str, depth: int, count: list[int]) -> list[str]:
    if not isinstance(query, Mapping) or not query:
        return [f"{path}: must be a non-empty object"]
    if depth > MAX_QUERY_DEPTH:
        return [f"{path}: $and/$or nested {depth} levels deep, over the cap of "
                f"{MAX_QUERY_DEPTH} (see README: Bounded work per request)"]
    problems: list[str] = []
    for key, expected in query.items():
        where = f"{path}.{key}"
        count[0] += 1
        if count[0] > MAX_QUERY_OPERATORS:
            break  # reported once by query_problems; the rest is not read
        if key in LOGICAL:
            if not isinstance(expected, list) or not expected:
                problems.append(f"{where}: must be a non-empty list of queries")
                continue
            for i, sub in enumerate(expected):
                problems += _query_problems(sub, f"{where}[{i}]", depth + 1, count)
                if count[0] > MAX_QUERY_OPERATORS:
                    break
        elif key.startswith("$"):
            problems.append(f"{where}: unknown logical operator (use $and or $or)")
        elif isinstance(expected, Mapping) and any(k.startswith("$") for k in expected):
            count[0] += len(expected)
            problems += _operator_problems(expected, where)
    return problems


def _operator_problems(operators: Mapping[str, Any], where: str) -> list[str]:
    problems = []
    for op, operand in operators.items():
        if op not in OPERATORS:
            problems.append(f"{where}.{op}: unsupported operator; use one of "
                            + ", ".join(sorted([*OPERATORS, *LOGICAL])))
        elif op in ("$in", "$nin") and not isinstance(operand, list):
            problems.append(f"{where}.{op}: must be a list")
        elif op == "$regex" and not isinstance(operand, str):
            problems.append(f"{where}.$regex: must be a string (a regular expression)")
        elif op == "$regex" and (problem := safe_regex.problem(operand)):
            problems.append(f"{where}.$regex: invalid regular expression: {problem}")
    return problems

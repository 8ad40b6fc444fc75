"""Check parameters: a declarative table per check, and the one validator that reads it.

Each check declares its parameters by Portkey's exact names (`minWords`, `failOnError`,
`webhookURL`) with a kind, whether it is required, and the manifest's default. Validation
fills the defaults in, normalises (a comma-separated list becomes a list, headers given as a
JSON string become an object) and reports every problem by parameter name; the caller
prefixes the path in the config. An unknown parameter is a problem too, with the closest
known name: `maxWord` that silently never limited anything is what strict configs prevent.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gateway.errors import InvalidRequest
from gateway.guardrails import json_schema
from gateway.net.hostguard import parse_origin
from gateway.regex import safe_regex

Kind = Literal["bool", "int", "number", "string", "strings", "strings_or_csv", "object",
               "headers", "url", "regex", "schema", "any"]
Problem = tuple[str, str]  # (parameter path, message)

# Headers a check may not set on its outbound call: they belong to the HTTP layer.
_FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection",
                                "upgrade", "te", "trailer", "keep-alive"})


@dataclass(frozen=True, slots=True)
class Param:
    kind: Kind
    required: bool = False
    default: Any = None  # None: no default, the parameter stays absent
    choices: tuple[str, ...] = ()
    nonempty: bool = False
    minimum: float | None = None
    maximum: float | None = None


# Accepted by every check: Portkey's generic `failOnError`, and the shorthand form's
# `is_enabled` and `id`, which land among the parameters there.
COMMON: Mapping[str, Param] = {
    "failOnError": Param("bool", default=False),
    "is_enabled": Param("bool"),
    "id": Param("string"),
}


def validate(table: Mapping[str, Param], raw: Mapping[str, Any]) -> tuple[dict[str, Any],
                                                                        list[Problem]]:
    """The parameters with defaults filled in, and every problem found."""
    known = {**COMMON, **table}
    problems: list[Problem] = [(str(key), _unknown(str(key), table)) for key in raw
                               if key not in known]
    params: dict[str, Any] = {}
    for name, param in known.items():
        if name not in raw:
            if param.required:
                problems.append((name, "is required"))
            elif param.default is not None:
                params[name] = param.default
            continue
        value, problem = _check(param, raw[name])
        if problem is not None:
            problems.append((name, problem))
        else:
            params[name] = value
    return params, problems


def _unknown(key: str, table: Mapping[str, Param]) -> str:
    names = sorted(table)
    close = difflib.get_close_matches(key, [*names, *COMMON], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    listed = ", ".join(names) or "none but failOnError"
    return f"unknown parameter{hint} (this check's parameters: {listed})"


def _check(param: Param, value: Any) -> tuple[Any, str | None]:
    value, problem = _KINDS[param.kind](value)
    if problem is not None:
        return value, problem
    if param.choices and value not in param.choices:
        return value, "must be one of " + ", ".join(repr(c) for c in param.choices)
    if param.nonempty and not value:
        return value, "must not be empty"
    if param.minimum is not None and value < param.minimum:
        return value, f"must be >= {param.minimum:g}"
    if param.maximum is not None and value > param.maximum:
        return value, f"must be <= {param.maximum:g}"
    return value, None


def _bool(value: Any) -> tuple[Any, str | None]:
    return value, None if isinstance(value, bool) else "must be true or false"


def _int(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    ok = isinstance(value, int) and not isinstance(value, bool)
    return value, None if ok else "must be an integer"


def _number(value: Any) -> tuple[Any, str | None]:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return value, None if ok else "must be a number"


def _string(value: Any) -> tuple[Any, str | None]:
    return value, None if isinstance(value, str) else "must be a string"


def _strings(value: Any) -> tuple[Any, str | None]:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value, None if ok else "must be a list of strings"


def _strings_or_csv(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()], None
    return _strings(value)


def _object(value: Any) -> tuple[Any, str | None]:
    return value, None if isinstance(value, dict) else "must be an object"


def _headers(value: Any) -> tuple[Any, str | None]:
    """An object of string values, or (Portkey accepts both) a JSON string of one."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value, "must be an object of headers, or a JSON string of one"
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return value, "must be an object of headers with string values"
    for name in value:
        if name.lower() in _FORBIDDEN_HEADERS or not name.isascii() or not name:
            return value, f"header '{name}' may not be set"
    return value, None


def _url(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str):
        return value, "must be a string"
    try:
        parse_origin(value)
    except InvalidRequest as exc:
        return value, exc.message.replace("custom host refused: ", "is not a usable URL: ")
    return value, None


def _regex(value: Any) -> tuple[Any, str | None]:
    problem = safe_regex.problem(value)
    return value, None if problem is None else f"invalid regular expression: {problem}"


def _schema(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, dict):
        return value, "must be a JSON Schema object"
    problem = json_schema.problem(value)
    return value, None if problem is None else f"invalid JSON Schema: {problem}"


_KINDS: dict[Kind, Callable[[Any], tuple[Any, str | None]]] = {
    "bool": _bool, "int": _int, "number": _number, "string": _string, "strings": _strings,
    "strings_or_csv": _strings_or_csv, "object": _object, "headers": _headers, "url": _url,
    "regex": _regex, "schema": _schema, "any": lambda value: (value, None),
}

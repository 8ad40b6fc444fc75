"""JSON Schema for the `jsonSchema` check: draft 2020-12, RE2 patterns, nothing fetched.

Portkey validates with `@cfworker/json-schema` (draft 2020-12, every error reported). Here
python-jsonschema's 2020-12 validator does, with two changes that keep it inside the trust
boundary: `pattern` and `patternProperties` match with RE2 through safe_regex (Python's `re`
backtracks, and the text being matched is a model's answer), and the reference registry is
empty, so a `$ref` to a URL is never retrieved (jsonschema would otherwise fetch it). A schema
whose patterns RE2 refuses, or whose references are not local (`#...`), is refused when the
config is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry

from gateway.regex import safe_regex

# At most this many validation errors are reported for one answer.
MAX_ERRORS = 50


def _pattern(validator: Validator, pattern: str, instance: Any,
             schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and \
            safe_regex.compile(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Validator, patterns: Mapping[str, Any], instance: Any,
                        schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        compiled = safe_regex.compile(pattern)
        for key, value in instance.items():
            if compiled.search(key) is not None:
                yield from validator.descend(  # type: ignore[attr-defined]
                    value, subschema, path=key, schema_path=pattern)


SafeValidator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern, "patternProperties": _pattern_properties})
_NOTHING: Registry[Any] = Registry()


def compile(schema: Mapping[str, Any]) -> Validator:
    """A validator for a schema `problem` accepted."""
    validator: Validator = SafeValidator(schema, registry=_NOTHING,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
    return validator


def problem(schema: Mapping[str, Any]) -> str | None:
    """Why a schema is refused, or None."""
    for where, value in _walk(schema, ""):
        is_pattern = where.endswith("/pattern") and isinstance(value, str)
        if (is_pattern or where.endswith("/patternProperties/")) and \
                (reason := safe_regex.problem(value)) is not None:
            return f"{where}: the pattern {reason}"
        if where.endswith(("/$ref", "/$dynamicRef")) and isinstance(value, str) \
                and not value.startswith("#"):
            return (f"{where}: only local references ('#...') are allowed; "
                    "remote schemas are never fetched")
    try:
        SafeValidator.check_schema(schema)
    except SchemaError as exc:
        at = "/" + "/".join(str(p) for p in exc.absolute_path)
        return f"{at}: {exc.message}"
    return None


def _walk(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, value) in a schema; each patternProperties key is yielded too,
    at `.../patternProperties/`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "patternProperties" and isinstance(value, dict):
                yield from ((f"{where}/patternProperties/", k) for k in value)
            yield f"{where}/{key}", value
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}/{i}")


def errors(validator: Validator, instance: Any) -> list[dict[str, str]]:
    """Every validation error (up to MAX_ERRORS), as Portkey reports them: path and message."""
    found = []
    for error in validator.iter_errors(instance):
        found.append({"path": "/" + "/".join(str(p) for p in error.absolute_path),
                      "message": error.message})
        if len(found) >= MAX_ERRORS:
            break
    return found

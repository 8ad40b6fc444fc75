"""Mustache rendering of a prompt's messages, with the variable rules the API promises.

- `{{name}}` and `{{{name}}}` interpolate, with no HTML escaping (a prompt is not HTML). The
  variable must be given, and must be a string or a number; a boolean, null, list or object
  there is a wrong type (400), as is anything under a dotted name that is not a string or number.
- `{{#name}}...{{/name}}` and `{{^name}}...{{/name}}` are sections: the variable may be any JSON
  value, or absent (absent counts as false, as the mustache spec says).
- Partials (`{{> name}}`) are refused when the template is saved.

Every missing variable, and every wrong one, is named in one 400.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pystache.context import ContextStack, KeyNotFoundError
from pystache.parsed import ParsedTemplate
from pystache.parser import ParsingError, parse
from pystache.renderengine import RenderEngine

from gateway.errors import InvalidRequest

# Where in a message list a template string sits: (message index, content part index or None).
Slot = tuple[int, int | None]


class TemplateError(ValueError):
    """A template that cannot be saved; the message names where it is wrong."""


def _lookup(stack: ContextStack, name: str) -> Any:
    """Section lookups: an absent variable is simply false."""
    try:
        return stack.get(name)
    except KeyNotFoundError:
        return None


def _no_partials(name: str) -> str:
    raise TemplateError(f"partials are not supported ({{{{> {name}}}}})")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


class _Engine(RenderEngine):  # type: ignore[misc]  # pystache ships no type hints
    """pystache's engine, with interpolation that records missing and wrongly typed names."""

    def __init__(self) -> None:
        super().__init__(literal=str, escape=str, resolve_context=_lookup,
                         resolve_partial=_no_partials, to_str=str)
        self.missing: dict[str, None] = {}  # an ordered set
        self.wrong: dict[str, str] = {}

    def fetch_string(self, context: ContextStack, name: str) -> str:
        try:
            value = context.get(name)
        except KeyNotFoundError:
            self.missing[name] = None
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # 5 -> "5", 0.25 -> "0.25"
        self.wrong.setdefault(name, _json_type(value))
        return ""


def _compile(text: str, where: str) -> ParsedTemplate:
    try:
        parsed = parse(text, raise_on_mismatch=True)
    except ParsingError as exc:
        raise TemplateError(f"{where}: invalid mustache template: {exc}") from None
    _refuse_partials(parsed, where)
    return parsed


def _refuse_partials(parsed: ParsedTemplate, where: str) -> None:
    try:
        parsed.render(_Probe(), ContextStack())
    except _PartialFound as found:
        raise TemplateError(f"{where}: partials are not supported ({{{{> {found.name}}}}})") \
            from None


class _PartialFound(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _found_partial(name: str) -> str:
    raise _PartialFound(name)


class _Probe(RenderEngine):  # type: ignore[misc]  # pystache ships no type hints
    """An engine that renders every section once, inverted ones too, and every variable as
    "": one render walks the whole template, in order, to the first partial."""

    def __init__(self) -> None:
        super().__init__(literal=str, escape=str, resolve_context=lambda stack, name: None,
                         resolve_partial=_found_partial, to_str=str)

    def fetch_string(self, context: ContextStack, name: str) -> str:
        return ""

    def fetch_section_data(self, context: ContextStack, name: str) -> list[dict[str, Any]]:
        return [{}]


def _slots(messages: Sequence[Mapping[str, Any]]) -> list[tuple[Slot, str]]:
    """Every template string: a message's text content, or the text of its text parts."""
    found: list[tuple[Slot, str]] = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str):
            found.append(((i, None), content))
        elif isinstance(content, list):
            found.extend(((i, j), part["text"]) for j, part in enumerate(content)
                         if isinstance(part, dict) and isinstance(part.get("text"), str))
    return found


@dataclass(frozen=True, slots=True)
class Template:
    """A prompt's messages with each mustache string parsed once."""

    messages: tuple[Mapping[str, Any], ...]
    parsed: tuple[tuple[Slot, ParsedTemplate], ...]

    @classmethod
    def compile(cls, messages: Sequence[Mapping[str, Any]]) -> Template:
        parsed = []
        for (i, j), text in _slots(messages):
            where = f"messages.{i}.content" + ("" if j is None else f".{j}.text")
            parsed.append(((i, j), _compile(text, where)))
        return cls(tuple(messages), tuple(parsed))

    def render(self, variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The messages with variables filled in; a 400 naming every missing or wrong one."""
        if not isinstance(variables, Mapping):
            raise InvalidRequest("'variables' must be a JSON object", param="variables",
                                 code="invalid_variables")
        engine = _Engine()
        out = [copy.deepcopy(dict(m)) for m in self.messages]  # the cached template stays intact
        for (i, j), parsed in self.parsed:
            text = parsed.render(engine, ContextStack(dict(variables)))
            if j is None:
                out[i]["content"] = text
            else:
                out[i]["content"][j]["text"] = text
        _check(engine)
        return out


def _check(engine: _Engine) -> None:
    problems = []
    if engine.missing:
        problems.append("missing prompt variables: " + ", ".join(engine.missing))
    if engine.wrong:
        problems.append("prompt variables of the wrong type: " + ", ".join(
            f"{name} (got {kind})" for name, kind in engine.wrong.items())
            + "; a variable inserted with {{name}} must be a string or a number")
    if problems:
        raise InvalidRequest("; ".join(problems), param="variables",
                             code="missing_variables" if engine.missing
                             else "invalid_variable_type")

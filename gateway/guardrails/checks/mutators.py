"""Mutators: regexReplace (with the PII preset) and addPrefix. They return a new body.

regexReplace redacts every match in each text part of the content the phase reads, with RE2.
Two deliberate departures from Portkey (docs/guardrails.md): every match is replaced, not
only the first when the rule has no `g` flag (a redaction that leaves the second e-mail
address in place is a leak), and `redactText` is literal (`$1` is not expanded). addPrefix
prefixes the first message of a role (chat, Messages) or the prompt (completions), before the
request only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.guardrails.checks import failed, pii
from gateway.guardrails.event import Subject
from gateway.guardrails.hooks import BEFORE, Check
from gateway.guardrails.parameters import Problem
from gateway.guardrails.results import CheckOutcome
from gateway.regex import safe_regex
from gateway.regex.literals import cannot_match, required_literals

_JS_FLAGS = {"i": "i", "m": "m", "s": "s", "g": "", "u": "", "d": ""}  # y (sticky): refused


@dataclass(frozen=True, slots=True)
class Replacer:
    kind: str  # "rule", or the PII kind
    pattern: safe_regex.Pattern
    valid: Callable[[str], bool] | None = None
    literals: tuple[str, ...] = ()  # text every match holds: without it, nothing to replace


def rule_source(rule: str) -> tuple[str, str | None]:
    """RE2 source for Portkey's rule (`/pattern/flags` or a bare pattern), or a problem."""
    end = rule.rfind("/")
    if not (rule.startswith("/") and end > 1 and "\n" not in rule[1:end]):
        return rule, None
    pattern, flags = rule[1:end], rule[end + 1:]
    if not set(flags) <= set("gimsuyd"):
        return rule, None  # not the /.../flags form: the whole rule is the pattern
    if len(set(flags)) != len(flags):
        return pattern, f"repeats a flag in '{flags}'"
    if "y" in flags:
        return pattern, "the sticky flag 'y' is not supported"
    inline = "".join(_JS_FLAGS[f] for f in flags)
    return (f"(?{inline}){pattern}" if inline else pattern), None


def regex_replace_problems(params: Mapping[str, Any]) -> list[Problem]:
    rule = params.get("rule")
    if rule is None:
        return [] if params.get("preset") else [("rule", "is required (or give a preset)")]
    source, problem = rule_source(rule)
    if problem is None:
        problem = safe_regex.problem(source)
    return [] if problem is None else [("rule", f"invalid regular expression: {problem}")]


def preset_problems(params: Mapping[str, Any]) -> list[Problem]:
    names = params.get("preset") or []
    unknown = [n for n in names if n not in pii.PRESETS]
    if unknown:
        return [("preset", f"unknown preset {unknown[0]!r}; presets: "
                           + ", ".join(pii.PRESETS))]
    return []


def prepare_regex_replace(params: Mapping[str, Any]) -> tuple[Replacer, ...]:
    replacers = [Replacer(s.kind, s.compiled, s.valid, required_literals(s.pattern))
                 for s in pii.shapes(params.get("preset") or [])]
    if params.get("rule") is not None:
        source = rule_source(params["rule"])[0]
        replacers.insert(0, Replacer("rule", safe_regex.compile(source), None,
                                     required_literals(source)))
    return tuple(replacers)


def redact(replacers: tuple[Replacer, ...], text: str, mark: str, counts: Counter[str]) -> str:
    for replacer in replacers:
        if cannot_match(replacer.literals, text):
            continue
        def swap(match: Any, replacer: Replacer = replacer) -> str:
            found: str = match.group(0)
            if replacer.valid is not None and not replacer.valid(found):
                return found
            counts[replacer.kind] += 1
            return mark
        text = replacer.pattern.sub(swap, text)
    return text


def regex_replace(check: Check, subject: Subject) -> CheckOutcome:
    rule = check.params.get("rule") or "preset:" + ",".join(check.params["preset"])
    mark, part = check.params["redactText"], subject.part
    if not part.content:
        return failed("Missing text to match", {
            "explanation": "An error occurred while processing the regex: Missing text to match",
            "regexPattern": rule})
    counts: Counter[str] = Counter()
    texts = tuple(redact(check.compiled, t, mark, counts) if t else None for t in part.texts)
    body = subject.with_texts(texts) if counts else None
    verdict = not (counts and check.params["failOnDetection"])
    data: dict[str, Any] = {
        "regexPattern": rule, "verdict": verdict,
        "explanation": f"Pattern '{rule}' matched and was replaced with '{mark}'" if body
        else f"The regex pattern '{rule}' did not match any text."}
    if check.params.get("preset"):
        data["detected"] = dict(counts)
    return CheckOutcome(verdict, data, json=body, transformed=body is not None)


def _prefixed(content: Any, prefix: str) -> Any:
    """Portkey's buildPrefixedContent: the first text part prefixed, or a text part added."""
    if content is None or isinstance(content, str):
        return prefix + (content or "")
    if isinstance(content, list):
        if content and isinstance(content[0], dict) and content[0].get("type") == "text":
            return [{**content[0], "text": prefix + str(content[0].get("text") or "")},
                    *content[1:]]
        return [{"type": "text", "text": prefix}, *content]
    return prefix + str(content)


def _is_empty(content: Any) -> bool:
    return (isinstance(content, str) and not content.strip()) or content == []


def _prefix_messages(body: Mapping[str, Any], prefix: str, role: str, add_to_existing: bool,
                     only_if_empty: bool, anthropic: bool) -> dict[str, Any]:
    listed = body.get("messages")
    messages = list(listed) if isinstance(listed, list) else []
    index = next((i for i, m in enumerate(messages)
                  if isinstance(m, dict) and m.get("role") == role), None)
    new = {"role": role, "content": [{"type": "text", "text": prefix}] if anthropic else prefix}
    if index is None:
        messages.insert(0 if role == "system" else len(messages), new)
    elif only_if_empty and not _is_empty(messages[index].get("content")):
        pass
    elif add_to_existing:
        messages[index] = {**messages[index],
                           "content": _prefixed(messages[index].get("content"), prefix)}
    else:
        messages.insert(index, new)
    return {**body, "messages": messages}


def add_prefix(check: Check, subject: Subject) -> CheckOutcome:
    """Before the request only, and only for chat, Messages and completions (else a no-op)."""
    kind = subject.request_type
    if subject.phase != BEFORE or kind not in ("chatComplete", "messages", "complete"):
        return CheckOutcome(True)
    prefix, params = check.params["prefix"], check.params
    body = subject.json or {}
    if kind == "complete":
        texts = subject.part.texts
        new = subject.with_texts(tuple(prefix + (t or "") if i == 0 else t
                                       for i, t in enumerate(texts))) if texts else None
        json = new if new is not None else body
    else:
        json = _prefix_messages(body, prefix, params["applyToRole"], params["addToExisting"],
                                params["onlyIfEmpty"], anthropic=kind == "messages")
    return CheckOutcome(True, {
        "prefix": prefix, "requestType": kind, "applyToRole": params["applyToRole"],
        "addToExisting": params["addToExisting"], "onlyIfEmpty": params["onlyIfEmpty"]},
        json=json, transformed=True)

"""Checks on structure found in the text: jsonSchema, jsonKeys, containsCode, validUrls.

JSON candidates are fenced code blocks and `{...}` spans, found as Portkey finds them but
with RE2 (its lazy `{[\\s\\S]*?}` would be quadratic under backtracking on a text of
unmatched braces). validUrls never touches the network: Portkey's sends a HEAD request (or a
DNS-over-HTTPS query) for every URL in a model's answer, which turns a guardrail into a
fetcher of attacker-chosen URLs; here a URL is valid when it is well formed and names a
plausible public host (docs/guardrails.md).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway.guardrails import json_schema
from gateway.guardrails.checks import excerpt, failed, flip
from gateway.guardrails.event import Subject
from gateway.guardrails.hooks import Check
from gateway.guardrails.results import CheckOutcome
from gateway.regex import safe_regex

_CODE_BLOCK = safe_regex.compile(r"```+(?:json)?\s*([\s\S]*?)```+")
_JSON_SPAN = safe_regex.compile(r"\{[\s\S]*?\}")
_FENCED = safe_regex.compile(r"```(\w+)\n[\s\S]*?\n```")
_URL = safe_regex.compile(r"https?://[^\s,\"'{}\[\]]+")
_LABEL = safe_regex.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")

# Markdown language tags -> the names containsCode's `format` uses (Portkey's table).
LANGUAGES = {
    "sql": "SQL", "py": "Python", "python": "Python", "gyp": "Python", "ts": "TypeScript",
    "tsx": "TypeScript", "typescript": "TypeScript", "js": "JavaScript", "jsx": "JavaScript",
    "javascript": "JavaScript", "java": "Java", "cs": "C#", "cpp": "C++", "c": "C",
    "rb": "Ruby", "php": "PHP", "swift": "Swift", "kt": "Kotlin", "go": "Go", "rs": "Rust",
    "scala": "Scala", "r": "R", "pl": "Perl", "sh": "Shell", "html": "HTML", "css": "CSS",
    "xml": "XML", "json": "JSON", "yml": "YAML", "md": "Markdown", "dockerfile": "Dockerfile",
}
_MISSING = object()


def _parse(candidate: str) -> Any:
    try:
        return orjson.loads(candidate)
    except orjson.JSONDecodeError:
        pass
    try:  # orjson refuses integers past 64 bits, which JSON.parse reads (as doubles)
        return json.loads(candidate, parse_int=_js_integer, parse_constant=_not_json)
    except ValueError:
        return _MISSING


def _js_integer(digits: str) -> int | float:
    """An integer as JSON.parse reads it: a long one as a double (as JavaScript's every number
    is; too long, Infinity, written as null), so that what a check reports can be written back
    as JSON (`hook_results`). Eighteen digits always fit in 64 bits."""
    return int(digits) if len(digits) <= 18 else float(digits)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's json reads them


def _blocks(text: str) -> list[str]:
    return [m.group(1).strip() for m in _CODE_BLOCK.finditer(text)]


def _spans(text: str) -> list[str]:
    return [m.group(0) for m in _JSON_SPAN.finditer(text)]


def json_schema_check(check: Check, subject: Subject) -> CheckOutcome:
    """The first candidate valid against the schema wins, else the first one parsed."""
    invert, text = check.params["not"], subject.text
    candidates = _blocks(text) or _spans(text)
    best: tuple[Any, list[dict[str, str]]] | None = None
    for candidate in candidates:
        value = _parse(candidate)
        if value is _MISSING:
            continue
        problems = json_schema.errors(check.compiled, value)
        if not problems or best is None:
            best = (value, problems)
        if not problems:
            break
    if best is None:  # no JSON: false whatever `not` says, as in Portkey
        return CheckOutcome(False, {"explanation": "No valid JSON found in the response.",
                                    "not": invert})
    value, problems = best
    verdict = flip(not problems, invert)
    if verdict:
        explanation = ("Successfully validated JSON does not match the schema as expected."
                       if invert else "Successfully validated JSON against the provided schema.")
    else:
        explanation = ("JSON matches the schema when it should not." if invert
                       else "Failed to validate JSON against the provided schema.")
    return CheckOutcome(verdict, {"matchedJson": value, "not": invert,
                                  "explanation": explanation, "validationErrors": problems})


def _keys_explanation(operator: str, present: list[str], missing: list[str],
                      verdict: bool) -> str:
    found = f"Found keys: [{', '.join(present)}]" if present else "No matching keys found"
    absent = f"Missing keys: [{', '.join(missing)}]" if missing else "No missing keys"
    return {
        ("any", True): f"Successfully found at least one required key. {found}.",
        ("any", False): f"Failed to find any required keys. {absent}.",
        ("all", True): f"Successfully found all required keys. {found}.",
        ("all", False): f"Failed to find all required keys. {absent}.",
        ("none", True): f"Successfully verified no required keys are present. {absent}.",
        ("none", False): f"Found some keys that should not be present. {found}.",
    }[(operator, verdict)]


def json_keys(check: Check, subject: Subject) -> CheckOutcome:
    """Top-level keys of the first candidate satisfying the operator (else the closest)."""
    keys, operator, text = check.params["keys"], check.params["operator"], subject.text
    if not text:
        return failed("Missing text to analyze", {
            "explanation": "An error occurred while processing JSON: Missing text to analyze",
            "operator": operator, "requiredKeys": keys, "textExcerpt": excerpt(text)})
    candidates = _blocks(text) + _spans(text)
    if not candidates:
        return CheckOutcome(False, {"explanation": "No valid JSON found in the text.",
                                    "requiredKeys": keys, "operator": operator,
                                    "textExcerpt": excerpt(text)})
    best: tuple[Any, list[str], list[str], bool] = (None, [], list(keys), False)
    for candidate in candidates:
        value = _parse(candidate)
        if value is _MISSING:
            continue
        present = [k for k in keys if isinstance(value, dict) and k in value]
        missing = [k for k in keys if k not in present]
        verdict = {"any": bool(present), "all": not missing, "none": not present}[operator]
        if verdict or len(present) > len(best[1]):
            best = (value, present, missing, verdict)
        if verdict:
            break
    value, present, missing, verdict = best
    return CheckOutcome(verdict, {
        "matchedJson": value, "verdict": verdict,
        "explanation": _keys_explanation(operator, present, missing, verdict),
        "presentKeys": present, "missingKeys": missing, "operator": operator,
        "textExcerpt": excerpt(text)})


def contains_code(check: Check, subject: Subject) -> CheckOutcome:
    """Fenced blocks with a language tag; without any block the verdict is `not`."""
    language, invert, text = check.params["format"], check.params["not"], subject.text
    if not text:
        return failed("No text content to analyze", {
            "explanation": "Error while checking for code blocks: No text content to analyze",
            "searchedFormat": language, "not": invert, "textExcerpt": excerpt(text)})
    tags = [m.group(1).lower() for m in _FENCED.finditer(text)]
    if not tags:
        return CheckOutcome(invert, {"explanation": "No code blocks found in the text",
                                     "searchedFormat": language, "not": invert,
                                     "foundFormats": [], "textExcerpt": excerpt(text)})
    found = [LANGUAGES.get(tag, tag) for tag in tags]
    verdict = flip(language in found, invert)
    if verdict:
        explanation = (f"No code blocks in {language} format found as expected" if invert
                       else f"Found code block(s) in {language} format")
    else:
        explanation = (f"Found code block(s) in {language} format when none were expected"
                       if invert else f"No code blocks in {language} format found")
    return CheckOutcome(verdict, {"explanation": explanation, "searchedFormat": language,
                                  "not": invert, "foundFormats": found,
                                  "textExcerpt": excerpt(text)})


def well_formed_url(url: str) -> bool:
    """An http(s) URL naming a global IP address or a DNS name with an alphabetic TLD."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError:
        return False
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    try:
        name = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = name.split(".")
    tld = labels[-1]
    return (len(labels) >= 2 and len(name) <= 253
            and all(len(label) <= 63 and _LABEL.search(label) for label in labels)
            and (tld.isalpha() and len(tld) >= 2 or tld.startswith("xn--")))


def valid_urls(check: Check, subject: Subject) -> CheckOutcome:
    invert, text = check.params["not"], subject.text
    method = "syntax"
    if not text:
        return failed("Missing text to analyze", {
            "explanation": "An error occurred while validating URLs: Missing text to analyze",
            "validationMethod": method, "not": invert, "textExcerpt": excerpt(text)})
    urls = [m.group(0) for m in _URL.finditer(text)]
    if not urls:
        return CheckOutcome(False, {"explanation": "No URLs found in the text.", "urls": [],
                                    "validationMethod": method, "not": invert,
                                    "textExcerpt": excerpt(text)})
    judged = [(url, well_formed_url(url)) for url in urls]
    valid = [url for url, ok in judged if ok]
    invalid = [url for url, ok in judged if not ok]
    verdict = flip(not invalid, invert)
    if verdict:
        explanation = (f"All URLs are invalid as expected ({len(invalid)} of {len(urls)})."
                       if invert else f"All URLs are valid ({len(valid)} found).")
    else:
        explanation = (f"Some URLs are valid when they should all be invalid "
                       f"({len(valid)} of {len(urls)})." if invert else
                       f"Some URLs are invalid ({len(invalid)} of {len(urls)} failed).")
    return CheckOutcome(verdict, {"verdict": verdict, "not": invert, "explanation": explanation,
                                  "validUrls": valid, "invalidUrls": invalid,
                                  "validationMethod": method, "textExcerpt": excerpt(text)})

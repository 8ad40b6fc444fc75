"""Every check the gateway runs, by id: its parameters, its function, how it is prepared.

The table is the contract: an id absent from it is refused when the config is read, and each
entry's parameters are Portkey's names with the manifest's defaults. `prepare` runs once per
config (compiles patterns and schemas); `problems` adds checks across parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.guardrails import json_schema
from gateway.guardrails.checks import mutators, outbound, request, structure, text
from gateway.guardrails.outbound import DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS
from gateway.guardrails.parameters import Param, Problem
from gateway.guardrails.spec import CheckSpec
from gateway.regex import safe_regex

NOT = Param("bool", default=False)
OPERATOR = Param("string", required=True, choices=("any", "all", "none"))
_TIMEOUT = Param("int", default=DEFAULT_TIMEOUT_MS, minimum=1, maximum=MAX_TIMEOUT_MS)


def _ordered(low: str, high: str) -> Callable[[Mapping[str, Any]], list[Problem]]:
    def problems(params: Mapping[str, Any]) -> list[Problem]:
        if low in params and high in params and params[low] > params[high]:
            return [(low, f"must be <= {high} ({params[high]:g})")]
        return []
    return problems


def _overlap(params: Mapping[str, Any]) -> list[Problem]:
    both = [t for t in params.get("allowedTypes") or [] if t in (params.get("blockedTypes") or [])]
    return [("blockedTypes", f"lists {', '.join(both)} also in allowedTypes")] if both else []


def _language(params: Mapping[str, Any]) -> list[Problem]:
    wanted = params.get("format", "")
    names = set(structure.LANGUAGES.values())
    close = [n for n in names if n.lower() == wanted.lower() and n != wanted]
    return [("format", f"is case-sensitive; did you mean '{close[0]}'?")] if close else []


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _model_rules(params: Mapping[str, Any]) -> list[Problem]:
    rules = params.get("rules", {})
    strings = _strings
    if "defaults" in rules and not strings(rules["defaults"]):
        return [("rules.defaults", "must be a list of model names")]
    metadata = rules.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(m, dict) and all(strings(v) for v in m.values())
            for m in metadata.values()):
        return [("rules.metadata", "must map metadata keys to {value: [models]} objects")]
    unknown = set(rules) - {"defaults", "metadata"}
    return [("rules", f"unknown key '{sorted(unknown)[0]}'")] if unknown else []


def _all(*checks: Callable[[Mapping[str, Any]], list[Problem]]
         ) -> Callable[[Mapping[str, Any]], list[Problem]]:
    return lambda params: [p for check in checks for p in check(params)]


CHECKS: dict[str, CheckSpec] = {
    "default.regexMatch": CheckSpec(
        text.regex_match, {"rule": Param("regex", required=True, nonempty=True), "not": NOT},
        prepare=lambda p: safe_regex.compile(p["rule"])),
    "default.contains": CheckSpec(
        text.contains, {"words": Param("strings", required=True), "operator": OPERATOR}),
    "default.wordCount": CheckSpec(
        text.word_count, {"minWords": Param("int", default=0),
                          "maxWords": Param("int", default=99999), "not": NOT},
        problems=_ordered("minWords", "maxWords")),
    "default.sentenceCount": CheckSpec(
        text.sentence_count, {"minSentences": Param("number", default=0),
                              "maxSentences": Param("number", default=99999), "not": NOT},
        problems=_ordered("minSentences", "maxSentences")),
    "default.characterCount": CheckSpec(
        text.character_count, {"minCharacters": Param("int", default=0),
                               "maxCharacters": Param("int", default=9999999), "not": NOT},
        problems=_ordered("minCharacters", "maxCharacters")),
    "default.alluppercase": CheckSpec(text.all_uppercase, {"not": NOT}),
    "default.alllowercase": CheckSpec(text.all_lowercase, {"not": NOT}),
    "default.endsWith": CheckSpec(
        text.ends_with, {"suffix": Param("string", required=True, nonempty=True), "not": NOT}),
    "default.notNull": CheckSpec(text.not_null, {"not": NOT}),
    "default.jsonSchema": CheckSpec(
        structure.json_schema_check, {"schema": Param("schema", required=True), "not": NOT},
        prepare=lambda p: json_schema.compile(p["schema"])),
    "default.jsonKeys": CheckSpec(
        structure.json_keys, {"keys": Param("strings", required=True, nonempty=True),
                              "operator": OPERATOR}),
    "default.containsCode": CheckSpec(
        structure.contains_code,
        {"format": Param("string", required=True, nonempty=True), "not": NOT},
        problems=_language),
    "default.validUrls": CheckSpec(
        structure.valid_urls, {"onlyDNS": Param("bool", default=False), "not": NOT}),
    "default.modelWhitelist": CheckSpec(
        request.model_whitelist,
        {"models": Param("strings", required=True, nonempty=True), "not": NOT}),
    "default.modelRules": CheckSpec(
        request.model_rules, {"rules": Param("object", required=True), "not": NOT},
        problems=_model_rules),
    "default.allowedRequestTypes": CheckSpec(
        request.allowed_request_types, {"allowedTypes": Param("strings_or_csv"),
                                        "blockedTypes": Param("strings_or_csv")},
        problems=_overlap),
    "default.requiredMetadataKeys": CheckSpec(
        request.required_metadata_keys,
        {"metadataKeys": Param("strings", required=True, nonempty=True),
         "operator": Param("string", required=True, choices=("all", "any", "none"))}),
    "default.webhook": CheckSpec(
        outbound.webhook, {"webhookURL": Param("url", required=True),
                           "headers": Param("headers"), "timeout": _TIMEOUT}, io=True),
    "default.log": CheckSpec(
        outbound.log, {"logURL": Param("url", required=True), "headers": Param("headers"),
                       "timeout": _TIMEOUT}, io=True),
    "default.regexReplace": CheckSpec(
        mutators.regex_replace,
        {"rule": Param("string", nonempty=True), "preset": Param("strings_or_csv"),
         "redactText": Param("string", default="[REDACTED]"),
         "failOnDetection": Param("bool", default=False)},
        prepare=mutators.prepare_regex_replace,
        problems=_all(mutators.regex_replace_problems, mutators.preset_problems)),
    "default.addPrefix": CheckSpec(
        mutators.add_prefix,
        {"prefix": Param("string", required=True, nonempty=True),
         "applyToRole": Param("string", default="user",
                              choices=("user", "system", "assistant", "developer")),
         "addToExisting": Param("bool", default=True),
         "onlyIfEmpty": Param("bool", default=False)}),
}

# Portkey ids this gateway knows and does not run, with the reason given in the 400.
NOT_RUN = {
    "default.jwt": "verifies JWTs against a remote JWKS; not run by this gateway",
}

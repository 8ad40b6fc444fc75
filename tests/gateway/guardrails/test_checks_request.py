"""modelWhitelist, modelRules, allowedRequestTypes, requiredMetadataKeys (Portkey's tests)."""

from __future__ import annotations

from typing import Any

from gateway.guardrails.results import CheckOutcome
from tests.gateway.guardrails.build import after, before, check, problems_of, run_on


def on_request(check_id: str, body: dict[str, Any], request_type: str = "chatComplete",
               metadata: dict[str, Any] | None = None, **params: Any) -> CheckOutcome:
    return run_on(check(check_id, **params),
                  before(body, request_type, metadata=metadata or {}))


# --- modelWhitelist -----------------------------------------------------------------------

def test_model_whitelist_allows_listed_models() -> None:
    result = on_request("default.modelWhitelist", {"model": "gemini-1.5-flash-001"},
                        models=["gemini-1.5-flash-001"])
    assert result.verdict is True and result.error is None
    assert result.data == {"verdict": True, "not": False,
                           "explanation": 'Model "gemini-1.5-flash-001" is allowed.',
                           "requestedModel": "gemini-1.5-flash-001",
                           "allowedModels": ["gemini-1.5-flash-001"]}


def test_model_whitelist_refuses_others() -> None:
    result = on_request("default.modelWhitelist", {"model": "gemini-1.5-pro-001"},
                        models=["gemini-1.5-flash-001"])
    assert result.verdict is False
    assert result.data["explanation"] == 'Model "gemini-1.5-pro-001" is not in the allowed list.'
    blocked = on_request("default.modelWhitelist", {"model": "gpt-4o"}, models=["gpt-4o"],
                         **{"not": True})
    assert blocked.verdict is False


def test_model_whitelist_missing_model_and_list() -> None:
    missing = on_request("default.modelWhitelist", {}, models=["gemini-1.5-flash-001"])
    assert missing.error is not None and missing.error.message == "Missing model in request"
    assert missing.data == {
        "explanation": "An error occurred while checking model whitelist: "
                       "Missing model in request",
        "requestedModel": "No model specified", "not": False,
        "allowedModels": ["gemini-1.5-flash-001"]}
    assert problems_of("input_guardrails", [{"modelWhitelist": {}}]) == [
        "input_guardrails[0].modelWhitelist.models: is required"]


def test_model_whitelist_reads_the_request_after_the_answer() -> None:
    subject = after("fine", request={"model": "gpt-4o", "messages": []})
    assert run_on(check("default.modelWhitelist", models=["gpt-4o"]), subject).verdict


# --- modelRules ---------------------------------------------------------------------------

RULES = {"defaults": ["gpt-4o-mini"],
         "metadata": {"team": {"research": ["gpt-4o", "o1"], "support": ["gpt-4o-mini"]}}}


def test_model_rules_by_metadata_then_defaults() -> None:
    research = on_request("default.modelRules", {"model": "o1"}, metadata={"team": "research"},
                          rules=RULES)
    assert research.verdict is True
    assert research.data["explanation"] == \
        'Model "o1" is allowed by rules. (matched rules: team:research)'
    support = on_request("default.modelRules", {"model": "o1"}, metadata={"team": "support"},
                         rules=RULES)
    assert support.verdict is False
    nobody = on_request("default.modelRules", {"model": "gpt-4o-mini"}, rules=RULES)
    assert nobody.verdict is True and nobody.data["explanation"].endswith(
        "(using default models)")


def test_model_rules_errors_and_problems() -> None:
    empty = on_request("default.modelRules", {"model": "o1"}, rules={"metadata": {}})
    assert empty.error is not None
    assert empty.error.message == "No allowed models resolved from rules"
    assert problems_of("input_guardrails", [{"modelRules": {"rules": {"defaults": "gpt"}}}]) \
        == ["input_guardrails[0].modelRules.rules.defaults: must be a list of model names"]


# --- allowedRequestTypes ------------------------------------------------------------------

def types(request_type: str, metadata: dict[str, Any] | None = None,
          **params: Any) -> CheckOutcome:
    return on_request("default.allowedRequestTypes", {"model": "m"}, request_type, metadata,
                      **params)


def test_allowed_types_from_parameters() -> None:
    result = types("chatComplete", allowedTypes=["chatComplete", "complete", "embed"])
    assert result.verdict is True and result.error is None
    assert 'Request type "chatComplete" is allowed' in result.data["explanation"]
    assert result.data["source"] == "parameters"
    refused = types("messages", allowedTypes=["chatComplete", "complete", "embed"])
    assert refused.verdict is False
    assert 'Request type "messages" is not allowed' in refused.data["explanation"]
    assert "chatComplete, complete, embed" in refused.data["explanation"]


def test_allowed_types_comma_separated() -> None:
    result = types("embed", allowedTypes="chatComplete, complete, embed")
    assert result.verdict is True
    assert result.data["allowedTypes"] == ["chatComplete", "complete", "embed"]


def test_allowed_types_from_metadata_and_priority() -> None:
    meta = types("complete", {"supported_endpoints": "complete, chatComplete"})
    assert meta.verdict is True and meta.data["source"] == "metadata"
    assert meta.data["allowedTypes"] == ["complete", "chatComplete"]
    param = types("embed", {"supported_endpoints": "complete, chatComplete"},
                  allowedTypes=["embed", "rerank"])
    assert param.verdict is True and param.data["source"] == "parameters"
    assert param.data["allowedTypes"] == ["embed", "rerank"]


def test_allowed_types_unrestricted_by_default() -> None:
    for request_type in ("complete", "chatComplete", "embed", "messages"):
        result = types(request_type)
        assert result.verdict is True and result.data["allowedTypes"] == ["all"]
        assert result.data["source"] == "default"
        assert "no restrictions configured" in result.data["explanation"]


def test_blocked_types() -> None:
    blocked = types("embed", blockedTypes=["embed", "messages"])
    assert blocked.verdict is False and blocked.data["mode"] == "blocklist"
    assert 'Request type "embed" is blocked' in blocked.data["explanation"]
    fine = types("chatComplete", blockedTypes="embed, messages")
    assert fine.verdict is True and fine.data["blockedTypes"] == ["embed", "messages"]
    assert "(not in blocklist)" in fine.data["explanation"]
    meta = types("complete", {"blocked_endpoints": ["complete", "embed"]})
    assert meta.verdict is False and meta.data["source"] == "metadata"
    override = types("chatComplete", {"blocked_endpoints": ["chatComplete"]},
                     blockedTypes=["embed", "messages"])
    assert override.verdict is True and override.data["source"] == "parameters"


def test_combined_types_and_conflicts() -> None:
    combined = types("chatComplete", allowedTypes=["chatComplete", "complete"],
                     blockedTypes=["embed"])
    assert combined.verdict is True and combined.data["mode"] == "combined"
    assert "in allowlist and not blocked" in combined.data["explanation"]
    blocked = types("embed", allowedTypes=["chatComplete"], blockedTypes=["embed"])
    assert blocked.verdict is False and "explicitly blocked" in blocked.data["explanation"]
    assert problems_of("input_guardrails", [{"allowedRequestTypes": {
        "allowedTypes": ["chatComplete", "embed"], "blockedTypes": ["embed"]}}]) == [
        "input_guardrails[0].allowedRequestTypes.blockedTypes: lists embed also in "
        "allowedTypes"]
    conflict = types("chatComplete", {"supported_endpoints": "embed",
                                      "blocked_endpoints": "embed"})
    assert conflict.verdict is False and conflict.error is not None
    assert "Conflict detected" in conflict.error.message


# --- requiredMetadataKeys -----------------------------------------------------------------

def keys(metadata: dict[str, Any], operator: str, wanted: list[str]) -> CheckOutcome:
    return on_request("default.requiredMetadataKeys", {"model": "m"}, metadata=metadata,
                      metadataKeys=wanted, operator=operator)


def test_required_metadata_keys() -> None:
    every = keys({"team": "a", "user": "b"}, "all", ["team", "user"])
    assert every.verdict is True
    assert every.data == {
        "explanation": "Check passed for 'all' metadata keys. All metadata keys were found.",
        "missing_metadata_keys": [], "found_metadata_keys": ["team", "user"],
        "operator": "all"}
    missing = keys({"team": "a"}, "all", ["team", "user"])
    assert missing.verdict is False and missing.data["missing_metadata_keys"] == ["user"]
    assert keys({"team": "a"}, "any", ["team", "user"]).verdict is True
    assert keys({"team": "a"}, "none", ["team"]).verdict is False


def test_required_metadata_keys_after_the_request_passes_with_an_error() -> None:
    result = run_on(check("default.requiredMetadataKeys", metadataKeys=["team"],
                          operator="all"), after("answer"))
    assert result.verdict is True and result.error is not None
    assert result.error.message == "This plugin only works for before_request_hooks"


def test_required_metadata_keys_parameters() -> None:
    assert problems_of("input_guardrails", [{"requiredMetadataKeys": {
        "metadataKeys": [], "operator": "all"}}]) == [
        "input_guardrails[0].requiredMetadataKeys.metadataKeys: must not be empty"]
    assert problems_of("input_guardrails", [{"requiredMetadataKeys": {
        "metadataKeys": ["a", 1], "operator": "all"}}]) == [
        "input_guardrails[0].requiredMetadataKeys.metadataKeys: must be a list of strings"]

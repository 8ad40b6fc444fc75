"""The config contract: shorthand and full hooks, problems named by path, caps, inheritance."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidRequest
from gateway.guardrails import config as hook_config
from gateway.guardrails.config import parse_header, parse_node
from gateway.guardrails.hooks import AFTER, BEFORE, NO_HOOKS, HookSet, inherit
from gateway.routing.config import ConfigNode, validate_config, validate_saved
from tests.gateway.guardrails.build import hooks, problems_of

CONTAINS = {"words": ["x"], "operator": "none"}


def config_problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        validate_config(config)
    assert caught.value.code == "invalid_config"
    return list(caught.value.extra["errors"])


# --- shorthand ----------------------------------------------------------------------------

def test_shorthand_moves_hook_keys_and_names_checks() -> None:
    hook, = hooks("input_guardrails", [{
        "contains": CONTAINS, "default.wordCount": {"maxWords": 9}, "deny": True,
        "async": False, "sequential": True, "on_fail": {"feedback": {"value": -1}}}])
    assert hook.type == "guardrail" and hook.deny and hook.sequential
    assert [c.id for c in hook.checks] == ["default.contains", "default.wordCount"]
    assert hook.id.startswith("input_guardrail_") and len(hook.id) == len("input_guardrail_") + 3
    assert hook.on_fail is not None and hook.on_fail.value == -1


def test_shorthand_ids_are_stable_and_overridable() -> None:
    raw = [{"contains": CONTAINS}]
    assert hooks("input_guardrails", raw)[0].id == hooks("input_guardrails", raw)[0].id
    assert hooks("output_mutators", [{"regexReplace": {"rule": "x"}}])[0].id.startswith(
        "output_guardrail_")
    named, = hooks("input_guardrails", [{"id": "no-secrets", "c1": {"id": "contains",
                                                                     **CONTAINS}}])
    assert named.id == "no-secrets" and named.checks[0].id == "default.contains"


def test_shorthand_mutators_and_disabled_checks() -> None:
    mutator, = hooks("input_mutators", [{"regexReplace": {"rule": "x", "is_enabled": False}}])
    assert mutator.type == "mutator" and mutator.checks[0].enabled is False


# --- full form ----------------------------------------------------------------------------

def test_full_hooks() -> None:
    hook, = hooks("after_request_hooks", [{
        "id": "my-hook", "type": "guardrail", "deny": True, "async": False,
        "checks": [{"id": "default.wordCount", "parameters": {"minWords": 1, "maxWords": 50},
                    "is_enabled": True},
                   {"id": "default.notNull", "is_enabled": False}],
        "onSuccess": {"feedback": {"value": 1, "weight": 1, "metadata": {"team": "a"}}}}])
    assert hook.id == "my-hook" and hook.deny
    assert [c.enabled for c in hook.checks] == [True, False]
    assert hook.checks[0].params == {"failOnError": False, "minWords": 1, "maxWords": 50,
                                     "not": False}
    assert hook.on_success is not None and hook.on_success.metadata == {"team": "a"}


def test_a_node_joins_its_lists_in_portkeys_order() -> None:
    node, problems = parse_node({
        "input_mutators": [{"id": "m", "addPrefix": {"prefix": "P: "}}],
        "input_guardrails": [{"id": "g", "contains": CONTAINS}],
        "before_request_hooks": [{"id": "f", "type": "guardrail",
                                  "checks": [{"id": "default.notNull"}]}],
        "output_guardrails": []})
    assert problems == []
    assert node.before is not None and [h.id for h in node.before] == ["f", "g", "m"]
    assert node.after == ()


@pytest.mark.parametrize(("raw", "problem"), [
    ([{"type": "guardrail", "chekcs": []}],
     "before_request_hooks[0].chekcs: unknown key; did you mean 'checks'?"),
    ([{"type": "validator", "checks": [{"id": "notNull"}]}],
     "before_request_hooks[0].type: must be 'guardrail' or 'mutator'"),
    ([{"checks": [{"id": "notNull"}]}],
     "before_request_hooks[0].type: is required ('guardrail' or 'mutator')"),
    ([{"type": "guardrail", "deny": "yes", "checks": [{"id": "notNull"}]}],
     "before_request_hooks[0].deny: must be true or false"),
    ([{"type": "guardrail", "checks": []}],
     "before_request_hooks[0].checks: must be a non-empty list of checks"),
    ([{"type": "guardrail", "guardrail_version_id": "gv-1", "checks": [{"id": "notNull"}]}],
     "before_request_hooks[0].guardrail_version_id: guardrails saved in Portkey's cloud are "
     "not available here; list the checks in the hook instead"),
    ([{"type": "guardrail", "checks": [{"id": "default.wordCount",
                                        "parameters": {"maxWord": 3}}]}],
     "before_request_hooks[0].checks[0].parameters.maxWord: unknown parameter; did you mean "
     "'maxWords'? (this check's parameters: maxWords, minWords, not)"),
    ([{"type": "guardrail", "checks": [{"id": "default.modelwhitelist"}]}],
     "before_request_hooks[0].checks[0].id: unknown check 'default.modelwhitelist'; did you "
     "mean 'default.modelWhitelist'?"),
    ([{"type": "guardrail", "checks": [{"id": "portkey.pii"}]}],
     "before_request_hooks[0].checks[0].id: unknown check 'portkey.pii': this gateway runs "
     "the built-in default.* checks only"),
    ([{"type": "guardrail", "checks": [{"id": "default.jwt"}]}],
     "before_request_hooks[0].checks[0].id: 'default.jwt' verifies JWTs against a remote "
     "JWKS; not run by this gateway"),
    ([{"type": "guardrail", "checks": [{"id": "notNull", "enabled": False}]}],
     "before_request_hooks[0].checks[0].enabled: unknown key; did you mean 'is_enabled'?"),
    ([{"type": "guardrail", "checks": [{"id": "webhook", "parameters": {
        "webhookURL": "ftp://hooks.example/x"}}]}],
     "before_request_hooks[0].checks[0].parameters.webhookURL: is not a usable URL: only "
     "http and https URLs are allowed"),
    ([{"type": "guardrail", "checks": [{"id": "webhook", "parameters": {
        "webhookURL": "https://hooks.example/x", "headers": {"Host": "internal"}}}]}],
     "before_request_hooks[0].checks[0].parameters.headers: header 'Host' may not be set"),
    ([{"type": "guardrail", "checks": [{"id": "log", "parameters": {
        "logURL": "https://logs.example/x", "timeout": 600000}}]}],
     "before_request_hooks[0].checks[0].parameters.timeout: must be <= 30000"),
    ([{"type": "guardrail", "on_fail": {"feedback": {"value": "bad"}},
       "checks": [{"id": "notNull"}]}],
     "before_request_hooks[0].on_fail.feedback: must be {value: number, weight: number, "
     "metadata: object}"),
    ("notalist", "before_request_hooks: must be a list of hooks"),
])
def test_full_hook_problems_name_their_path(raw: Any, problem: str) -> None:
    assert problem in problems_of("before_request_hooks", raw)


def test_shorthand_problems_name_their_path() -> None:
    assert problems_of("input_guardrails", [{"deny": True}]) == [
        'input_guardrails[0]: names no check (e.g. {"default.contains": {"words": [...], '
        '"operator": "none"}})']
    assert problems_of("input_guardrails", [{"contains": ["x"]}]) == [
        "input_guardrails[0].contains: must be an object of the check's parameters"]
    assert problems_of("input_guardrails", ["contains"]) == [
        "input_guardrails[0]: must be an object"]


# --- caps ---------------------------------------------------------------------------------

def test_caps_on_hooks_checks_and_rules() -> None:
    many = [{"contains": CONTAINS}] * (hook_config.MAX_HOOKS_PER_LIST + 1)
    assert problems_of("input_guardrails", many)[0].startswith(
        "input_guardrails: 17 hooks, over the cap of 16")
    wide = [{f"c{i}": {"id": "contains", **CONTAINS} for i in range(11)}] * 3
    assert problems_of("input_guardrails", wide)[0].startswith(
        "input_guardrails: 33 checks in one phase, over the cap of 32")
    rule = "[a-z]{1,30}[0-9]{1,30}"  # 122 RE2 instructions
    heavy = [{f"r{i}": {"id": "regexMatch", "rule": rule} for i in range(17)}]
    assert problems_of("input_guardrails", heavy) == [
        "input_guardrails: the rules total 2074 RE2 instructions in one phase, over the cap "
        "of 2000 (see README: Bounded work per request)"]


# --- in the config model ------------------------------------------------------------------

def test_problems_carry_the_path_in_the_tree() -> None:
    config = {"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "openai"},
        {"provider": "openai", "input_guardrails": [{"regexMatch": {"rule": "(a)\\1"}}],
         "before_request_hooks": [{"type": "guardrail", "checks": [
             {"id": "contains", "parameters": CONTAINS},
             {"id": "contains", "parameters": CONTAINS},
             {"id": "regexMatch", "parameters": {"rule": "(?=x)"}}]}]}]}
    problems = config_problems(config)
    assert problems[0].startswith("targets[1].before_request_hooks[0].checks[2].parameters.rule:"
                                  " invalid regular expression")
    assert problems[1].startswith("targets[1].input_guardrails[0].regexMatch.rule: invalid "
                                  "regular expression")


def test_defaults_belong_at_the_root() -> None:
    ok = validate_config({"provider": "openai",
                          "default_output_guardrails": [{"notNull": {}}]})
    assert len(ok.hooks.defaults.after) == 1
    problems = config_problems({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "openai", "default_input_guardrails": [{"notNull": {}}]}]})
    assert problems == ["targets[0]: default_input_guardrails and default_output_guardrails "
                        "belong at the root of the config"]


def test_camel_case_keys_and_typos() -> None:
    node = validate_config({"provider": "openai", "inputGuardrails": [{"contains": CONTAINS}]})
    assert node.hooks.before is not None and len(node.hooks.before) == 1
    assert config_problems({"provider": "openai", "input_guardrail": []}) == [
        "input_guardrail: unknown key; did you mean 'input_guardrails'?"]


def test_saved_configs_are_validated_the_same_way() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_saved({"provider": "openai",
                        "output_guardrails": [{"jsonSchema": {"schema": {"type": "strin"}}}]})
    assert caught.value.param == "config"
    assert caught.value.extra["errors"][0].startswith(
        "output_guardrails[0].jsonSchema.schema: invalid JSON Schema")


def _leaves(node: ConfigNode, parent: HookSet, defaults: HookSet) -> list[HookSet]:
    """How the plan inherits hooks: the child's own list wins, defaults come last."""
    hooks_here = inherit(parent, node.hooks)
    if not node.targets:
        return [hooks_here.plus(defaults)]
    return [leaf for child in node.targets for leaf in _leaves(child, hooks_here, defaults)]


def test_hooks_inherit_down_the_tree_and_a_childs_list_replaces() -> None:
    root = validate_config({
        "strategy": {"mode": "fallback"},
        "input_guardrails": [{"id": "parent-in", "contains": CONTAINS}],
        "output_guardrails": [{"id": "parent-out", "notNull": {}}],
        "default_input_guardrails": [{"id": "default-in", "wordCount": {"maxWords": 500}}],
        "targets": [
            {"provider": "openai"},
            {"provider": "openai", "input_guardrails": [{"id": "child-in", "notNull": {}}]},
            {"strategy": {"mode": "single"}, "before_request_hooks": [],
             "targets": [{"provider": "openai"}]},
        ]})
    leaves = _leaves(root, NO_HOOKS, root.hooks.defaults)
    ids = [([h.id for h in s.before], [h.id for h in s.after]) for s in leaves]
    assert ids == [(["parent-in", "default-in"], ["parent-out"]),
                   (["child-in", "default-in"], ["parent-out"]),
                   (["default-in"], ["parent-out"])]


# --- default-guardrail headers ------------------------------------------------------------

def test_default_guardrail_headers() -> None:
    header = "x-portkey-default-input-guardrails"
    parsed = parse_header('[{"contains": {"words": ["x"], "operator": "none"}, "deny": true}]',
                          BEFORE, header)
    assert parsed[0].deny and parsed[0].checks[0].id == "default.contains"
    with pytest.raises(InvalidRequest) as caught:
        parse_header('[{"contains": {"words": "x", "operator": "none"}}]', AFTER,
                     "x-portkey-default-output-guardrails")
    assert caught.value.param == "x-portkey-default-output-guardrails"
    assert caught.value.extra["errors"] == [
        "x-portkey-default-output-guardrails[0].contains.words: must be a list of strings"]
    with pytest.raises(InvalidRequest):
        parse_header("not json", BEFORE, header)

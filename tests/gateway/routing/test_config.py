"""The config model: every bad config gives a 400 listing each problem with its path."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import InvalidRequest
from gateway.routing.config import ConfigCache, validate_config

GOOD = {
    "retry": {"attempts": 3},
    "strategy": {"mode": "fallback", "on_status_codes": [429, 500, 503]},
    "targets": [
        {"provider": "vllm", "override_params": {"model": "mistral-7b"}},
        {"strategy": {"mode": "loadbalance"},
         "targets": [{"provider": "openai", "api_key": "sk-1", "weight": 0.7},
                     {"provider": "anyscale", "api_key": "esecret_2", "weight": 0.3}]},
    ],
}


def test_the_issue_example_is_valid():
    node = validate_config(GOOD)
    assert node.strategy.mode == "fallback"
    assert node.targets[1].targets[0].weight == 0.7


def test_camel_case_keys_are_accepted():
    node = validate_config({"strategy": {"mode": "fallback", "onStatusCodes": [500]},
                            "targets": [{"provider": "openai", "overrideParams": {"max_tokens": 5},
                                         "requestTimeout": 100,
                                         "retry": {"attempts": 1, "useRetryAfterHeader": False}}]})
    assert node.strategy.on_status_codes == [500]
    leaf = node.targets[0]
    assert leaf.override_params == {"max_tokens": 5}  # children of override_params untouched
    assert leaf.request_timeout == 100
    assert leaf.retry.use_retry_after_header is False


def test_retry_attempts_are_capped_at_ten():
    assert validate_config({"provider": "openai", "retry": {"attempts": 50}}).retry.attempts == 10


BAD = [
    ({"strategy": {"mode": "loadbalance"},
      "targets": [{"provider": "openai"}, {"provider": "openai", "weight": -1}]},
     ["targets[1].weight: must be >= 0"]),
    ({"strategy": {"mode": "roundrobin"}, "targets": [{"provider": "openai"}]},
     ["strategy.mode: Input should be 'single', 'fallback', 'loadbalance' or 'conditional'"]),
    ({"provider": "nope"}, ["provider: unknown provider 'nope'"]),
    ({"targets": [{"provider": "openai"}]}, ["strategy: is required when targets are given"]),
    ({"strategy": {"mode": "fallback"}}, ["targets: is required when a strategy is given"]),
    ({"strategy": {"mode": "fallback"}, "targets": []}, ["targets: must not be empty"]),
    ({"provider": "openai", "retry": {"attempts": -1}}, ["retry.attempts: must be >= 0"]),
    ({"provider": "openai", "retry": {}}, ["retry.attempts: is required"]),
    ({"provider": "openai", "request_timeout": 0}, ["request_timeout: must be > 0"]),
    ({"provider": "openai", "cache": {"mode": "fancy"}},
     ["cache.mode: Input should be 'simple' or 'semantic'"]),
    ({"strategy": {"mode": "fallback", "on_status_codes": [700]},
      "targets": [{"provider": "openai"}]},
     ["strategy.on_status_codes: must be HTTP status codes between 100 and 599"]),
    ({"strategy": {"mode": "loadbalance"},
      "targets": [{"provider": "openai", "weight": 0}, {"provider": "groq", "weight": 0}]},
     ["targets: at least one weight must be > 0"]),
    ({"strategy": {"mode": "conditional", "conditions": [
        {"query": {"metadata.plan": {"$like": "x"}}, "then": "big"},
        {"query": {"params.model": {"$in": "gpt"}}, "then": "missing"}],
        "default": "nowhere"},
      "targets": [{"name": "big", "provider": "openai"}]},
     ["strategy.conditions[0].query.metadata.plan.$like: unsupported operator",
      "strategy.conditions[1].query.params.model.$in: must be a list",
      "strategy.conditions[1].then: no target is named 'missing'",
      "strategy.default: no target is named 'nowhere'"]),
    ({"strategy": {"mode": "conditional"}, "targets": [{"name": "a", "provider": "openai"}]},
     ["strategy.conditions: conditional mode needs conditions"]),
    ({"strategy": {"mode": "conditional", "conditions": [
        {"query": {"params.x": {"$regex": "("}}, "then": "a"}]},
      "targets": [{"name": "a", "provider": "openai"}]},
     ["strategy.conditions[0].query.params.x.$regex: invalid regular expression"]),
    ([1, 2], ["config must be a JSON object"]),
]


@pytest.mark.parametrize(("config", "expected"), BAD)
def test_bad_configs_list_every_problem_with_its_path(config, expected):
    with pytest.raises(InvalidRequest) as info:
        validate_config(config)
    error = info.value
    assert error.status == 400
    listed = error.extra.get("errors", [error.message])
    for fragment in expected:
        assert any(fragment in problem for problem in listed), (fragment, listed)
    assert len(listed) >= len(expected)


def test_config_text_is_validated_once_and_cached():
    cache = ConfigCache(size=2)
    text = '{"provider": "openai"}'
    assert cache.parse(text) is cache.parse(text)
    with pytest.raises(InvalidRequest, match="neither JSON nor a saved config id"):
        cache.parse("{not json")


def test_unknown_keys_name_the_closest_known_key():
    with pytest.raises(InvalidRequest) as info:
        validate_config({"strategy": {"mode": "fallback", "onStatusCode": [500]},
                         "targets": [{"provider": "openai", "custom_hst": "http://h",
                                      "cache": {"mode": "simple", "maxAge": 5, "max_agee": 1}},
                                     {"virtual_key": "v", "awsRegio": "x"}]})
    assert info.value.extra["errors"] == [
        "strategy.onStatusCode: unknown key; did you mean 'on_status_codes'?",
        "targets[0].custom_hst: unknown key; did you mean 'custom_host'?",
        "targets[0].cache.max_agee: unknown key; did you mean 'max_age'?",
        "targets[1].awsRegio: unknown key; did you mean 'aws_region'?",
    ]


def test_provider_options_come_from_the_adapters():
    node = validate_config({"provider": "azure-openai", "resource_name": "res",
                            "azureDeploymentId": "dep", "azure_api_version": "2024-10-21"})
    assert node.options() == {"azure-resource-name": "res", "azure-deployment-id": "dep",
                              "azure-api-version": "2024-10-21"}
    account = {"client_email": "a@b", "private_key": "k"}
    node = validate_config({"provider": "vertex-ai", "vertex_service_account_json": account})
    assert orjson.loads(node.options()["vertex-service-account-json"]) == account


@pytest.mark.parametrize(("config", "fragment"), [
    ({"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai"}] * 51},
     "targets: 51 targets, over the cap of 50"),
    ({"strategy": {"mode": "fallback"},
      "targets": [{"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai"}] * 40}]
      * 3}, "more than the cap of 100 targets in all"),
])
def test_caps_are_400s_naming_the_cap(config, fragment):
    with pytest.raises(InvalidRequest, match=fragment) as info:
        validate_config(config)
    assert info.value.code == "config_too_large"


def test_nesting_is_capped():
    config: dict = {"provider": "openai"}
    for _ in range(9):
        config = {"strategy": {"mode": "single"}, "targets": [config]}
    validate_config(config)  # ten levels
    with pytest.raises(InvalidRequest, match="nested deeper than the cap of 10 levels"):
        validate_config({"strategy": {"mode": "single"}, "targets": [config]})

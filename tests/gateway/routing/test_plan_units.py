"""Inheritance down the tree, weighted picks and circuit breakers, without the network."""

from __future__ import annotations

import random

import pytest
from starlette.datastructures import Headers

from gateway.contracts.identity import NoKeyStore
from gateway.contracts.plan import Branch, Leaf
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.execute import pick_weighted
from gateway.pipeline.parse import parse_request
from gateway.pipeline.resolve import resolve
from gateway.routing.breaker import Breakers
from gateway.routing.config import ConfigCache
from gateway.routing.plan import build_plan
from providers.base import Endpoint


def context(headers: dict[str, str]):
    raw = b'{"model": "m"}'
    return parse_request(endpoint=Endpoint.CHAT, method="POST", path="chat/completions",
                         query="", headers=Headers(headers), raw_body=raw,
                         body=CHAT.decode(Endpoint.CHAT, raw).body, dialect=CHAT.name,
                         request_id="r", trace_id="t")


async def plan(config: str, **headers: str):
    parsed = context({"x-portkey-config": config, **headers})
    # Resolving an inline config with no key store does no I/O; planning is pure.
    resolved = await resolve(NoKeyStore(), ConfigCache(), parsed)
    return build_plan(parsed, resolved.config, saved=resolved.saved,
                      virtual_keys=resolved.virtual_keys)


async def test_values_inherit_down_the_tree_and_children_win():
    tree = await plan('''{"retry": {"attempts": 2}, "request_timeout": 1000,
        "override_params": {"model": "parent", "temperature": 0.1},
        "custom_host": "http://127.0.0.1:9/v1", "forward_headers": ["X-Team"],
        "cache": {"mode": "simple", "max_age": 60},
        "strategy": {"mode": "fallback"},
        "targets": [
          {"provider": "openai", "api_key": "k1", "override_params": {"model": "child"}},
          {"strategy": {"mode": "single"}, "retry": {"attempts": 5, "on_status_codes": [418]},
           "request_timeout": 50, "custom_host": "http://127.0.0.1:8/v1", "forward_headers": [],
           "cache": {"mode": "simple", "max_age": 5},
           "targets": [{"provider": "groq", "api_key": "k2"}]}]}''')
    assert isinstance(tree, Branch) and tree.mode == "fallback"
    first, nested = tree.children
    assert first.path == "config.targets[0]"
    assert first.override_params == {"model": "child", "temperature": 0.1}
    assert first.retry.attempts == 2 and first.request_timeout_ms == 1000
    assert first.custom_host == "http://127.0.0.1:9/v1"
    assert first.forward_headers == ("x-team",)
    assert first.cache.max_age == 60
    leaf = nested.children[0]
    assert leaf.path == "config.targets[1].targets[0]"
    assert leaf.retry.attempts == 5 and leaf.retry.on_status_codes == {418}
    assert leaf.request_timeout_ms == 50 and leaf.custom_host == "http://127.0.0.1:8/v1"
    assert leaf.forward_headers == () and leaf.cache.max_age == 5
    assert leaf.override_params == {"model": "parent", "temperature": 0.1}


async def test_leaf_without_provider_uses_request_headers():
    leaf = await plan('{"retry": {"attempts": 1}}', **{
        "x-portkey-provider": "anyscale", "authorization": "Bearer esecret_x"})
    assert isinstance(leaf, Leaf)
    assert (leaf.provider, leaf.api_key, leaf.retry.attempts) == ("anyscale", "esecret_x", 1)


async def test_headers_win_over_config():
    leaf = await plan('{"provider": "openai", "custom_host": "http://127.0.0.1:1/v1",'
                      ' "forward_headers": ["a"]}',
                      **{"x-portkey-custom-host": "http://127.0.0.1:2/v1",
                         "x-portkey-forward-headers": "b"})
    assert leaf.custom_host == "http://127.0.0.1:2/v1" and leaf.forward_headers == ("b",)


async def test_leaf_without_any_provider_is_a_400():
    from gateway.errors import InvalidRequest
    with pytest.raises(InvalidRequest, match="config.targets\\[0\\]: no provider"):
        await plan('{"strategy": {"mode": "single"}, "targets": [{"api_key": "x"}]}')


def test_loadbalance_lands_within_two_percent_of_weights():
    branch = Branch("config", "loadbalance",
                    (Leaf("a", "openai"), Leaf("b", "groq"), Leaf("c", "anyscale")),
                    weights=(0.7, 0.3, 0.0))
    rng = random.Random(1234)
    picks = [pick_weighted(branch, None, rng.random()).path for _ in range(10_000)]
    assert abs(picks.count("a") / 10_000 - 0.7) < 0.02
    assert abs(picks.count("b") / 10_000 - 0.3) < 0.02
    assert picks.count("c") == 0  # weight 0 is never picked


def test_breaker_opens_after_threshold_and_closes_after_cooldown():
    now = [0.0]
    breakers = Breakers(3, window_s=10, cooldown_s=5, clock=lambda: now[0])
    leaf = Leaf("config", "openai", api_key="k")
    for _ in range(2):
        breakers.record(leaf, 503)
    assert not breakers.is_open(leaf)
    breakers.record(leaf, 429)
    assert breakers.is_open(leaf) and breakers.opens == 1
    now[0] = 5.1
    assert not breakers.is_open(leaf)
    breakers.record(leaf, 400)  # a client error says nothing about the target's health
    assert not breakers.is_open(leaf)

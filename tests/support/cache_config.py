"""Until the routing engine (issue 3) reads `cache` from configs, tests enable the cache
through this plan wrapper: a leaf without a cache policy takes the `cache` object of the
request's inline `x-portkey-config`. Once configs carry `cache` themselves it does nothing."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from gateway import inference
from gateway.routing.leaf import CachePolicy, Leaf


def enable_config_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    original = inference.build_plan

    async def build_plan(services: Any, ctx: Any) -> Any:
        plan = await original(services, ctx)
        if isinstance(plan, Leaf) and plan.cache is None and ctx.config:
            config = orjson.loads(ctx.config)
            cache = config.get("cache") if isinstance(config, dict) else None
            if isinstance(cache, dict):
                plan = dataclasses.replace(plan, cache=CachePolicy(
                    mode=cache.get("mode", "simple"), max_age=cache.get("max_age")))
        return plan

    monkeypatch.setattr(inference, "build_plan", build_plan)

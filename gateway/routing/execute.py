"""Execute a routing plan: walk the strategy tree, retrying and falling back."""

from __future__ import annotations

from gateway.attempt import Answer, run_attempt
from gateway.cache import cached_attempt
from gateway.context import RequestContext
from gateway.routing.leaf import Leaf
from gateway.services import Services


async def execute(services: Services, ctx: RequestContext, leaf: Leaf) -> Answer:
    answer = await cached_attempt(services, ctx, leaf, run_attempt)
    ctx.answered_by = leaf.provider
    ctx.option_path = leaf.path
    return answer

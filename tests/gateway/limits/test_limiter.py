"""The limiter holds one ticket per request, adding a leaf's virtual key when it runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.datastructures import Headers

from gateway.contracts.identity import Limits, Principal, VirtualKey
from gateway.contracts.outcome import Outcome
from gateway.contracts.plan import Branch, Leaf
from gateway.errors import RateLimited
from gateway.limits import Limiter, virtual_key_scope
from gateway.limits.counters import MemoryCounters
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.parse import parse_request
from gateway.pipeline.routes import admit
from providers.base import Endpoint

PRINCIPAL = Principal(id="k1", name="ci", scopes=frozenset(), limits=Limits(max_concurrent=1))
VK = VirtualKey(id="v1", slug="team", provider="anyscale", secret="s",
                limits=Limits(rpm=1, max_concurrent=1))
LEAF = Leaf(path="config.targets[1]", provider="anyscale", virtual_key=VK)
# A tree: its leaves' virtual keys are admitted when each leaf runs, not up front.
TREE = Branch("config", "fallback", (Leaf("config.targets[0]", "anyscale"), LEAF),
              weights=(1.0, 1.0))


def new_ctx() -> Outcome:
    raw = b'{"model": "m"}'
    parsed = parse_request(endpoint=Endpoint.CHAT, method="POST", path="chat/completions",
                           query="", headers=Headers({}), raw_body=raw,
                           body=CHAT.decode(Endpoint.CHAT, raw).body, dialect=CHAT.name,
                           request_id="r", trace_id="t")
    ctx = Outcome(parsed)
    ctx.principal = PRINCIPAL
    return ctx


async def admit_virtual_key(services: SimpleNamespace, ctx: Outcome, leaf: Leaf) -> None:
    """What execute does for a leaf with a virtual key, just before the leaf runs."""
    await services.limiter.admit(ctx, [virtual_key_scope(leaf.virtual_key)])


async def test_leaf_virtual_key_joins_the_ticket_once_and_everything_is_released():
    services = SimpleNamespace(limiter=Limiter(MemoryCounters(), "p:", 600, False))
    ctx = new_ctx()
    await admit(services, ctx, TREE)  # a tree: only the API key so far
    assert [s.kind for s in ctx.limit_ticket.scopes] == ["api_key"]
    await admit_virtual_key(services, ctx, LEAF)
    await admit_virtual_key(services, ctx, LEAF)  # a retry of the same leaf: not counted again
    assert [s.kind for s in ctx.limit_ticket.scopes] == ["api_key", "virtual_key"]
    assert len(ctx.limit_ticket.slots) == 2

    other = new_ctx()
    with pytest.raises(RateLimited, match="API key 'ci' allows 1 concurrent requests"):
        await admit(services, other, TREE)

    services.limiter.finished(ctx)
    await services.limiter.drain()
    await admit(services, other, TREE)  # the API key's slot is free again
    with pytest.raises(RateLimited, match="virtual key 'team' allows 1 requests per minute"):
        await admit_virtual_key(services, other, LEAF)

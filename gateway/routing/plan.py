"""Build the routing plan for a request: a tree of strategies over leaves."""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.errors import InvalidRequest
from gateway.routing.leaf import Leaf


def header_leaf(ctx: RequestContext, provider: str | None = None) -> Leaf:
    """The single target named by x-portkey-provider and Authorization."""
    provider = provider or ctx.provider
    if provider is None:
        raise InvalidRequest(
            "no provider given: send x-portkey-provider (with Authorization: Bearer <key>), "
            "x-portkey-virtual-key or x-portkey-config", param="x-portkey-provider",
            code="missing_provider")
    return Leaf(path="config", provider=provider, api_key=ctx.provider_key,
                custom_host=ctx.custom_host, options=ctx.options,
                forward_headers=ctx.forward_headers or ())

"""Build the routing plan for a request: a tree of strategies over leaves."""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.errors import AuthenticationFailed, InvalidRequest
from gateway.resolve import VirtualKey
from gateway.routing.leaf import Leaf
from gateway.services import Services


async def build_plan(services: Services, ctx: RequestContext) -> Leaf:
    """Authenticate the caller, then turn headers (and later configs) into a plan."""
    ctx.principal = await services.resolver.authenticate(ctx.api_key)
    if ctx.virtual_key and not ctx.provider:
        vk = await resolve_virtual_key(services, ctx, ctx.virtual_key)
        return virtual_key_leaf(ctx, vk, path="config")
    return header_leaf(ctx)


async def resolve_virtual_key(services: Services, ctx: RequestContext, slug: str) -> VirtualKey:
    if ctx.principal is None:
        raise AuthenticationFailed("virtual keys can only be used with a gateway API key "
                                   "(x-portkey-api-key)", param="x-portkey-api-key")
    vk = await services.resolver.virtual_key(slug)
    ctx.virtual_key_id = vk.id
    return vk


def virtual_key_leaf(ctx: RequestContext, vk: VirtualKey, path: str) -> Leaf:
    return Leaf(path=path, provider=vk.provider, api_key=vk.secret, virtual_key=vk,
                base_url=vk.custom_host, options={**vk.options, **ctx.options},
                forward_headers=ctx.forward_headers or ())


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

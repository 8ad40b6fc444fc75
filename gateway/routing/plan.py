"""Build the routing plan for a request: a tree of strategies over leaves.

Values inherit down the tree: `override_params` merge parent to child (child wins);
`retry`, `cache`, `request_timeout`, `custom_host` and `forward_headers` pass down unless a
child sets its own. Headers win over the config for custom host, forward headers and timeout.

A saved config (by id, or an API key's default config) was written by an admin: its
`custom_host` is a stored destination, like a virtual key's (no SSRF guard), and its
`api_key`s and credential options are stored secrets, bound to their destinations, whose
options the client may not override (gateway/security/destinations.py).
An inline config's `custom_host` is the client's, like the header.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from gateway.contracts.identity import VirtualKey
from gateway.contracts.plan import (
    DEFAULT_RETRY_CODES,
    Branch,
    CachePolicy,
    ConditionRule,
    Leaf,
    Node,
    RetryPolicy,
)
from gateway.contracts.request import RequestContext
from gateway.errors import AuthenticationFailed, InvalidRequest
from gateway.routing.config import ConfigNode, validate_config
from gateway.security.access import (
    ensure_config_allowed,
    ensure_inference,
    ensure_virtual_key_allowed,
)
from gateway.security.destinations import has_credential_option, stored_options_win
from gateway.services import Services


@dataclass(frozen=True, slots=True)
class _Inherited:
    override_params: dict[str, Any] = field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    cache: CachePolicy | None = None
    request_timeout_ms: int | None = None
    custom_host: str | None = None
    forward_headers: tuple[str, ...] = ()
    saved: bool = False  # the config was written by an admin, not sent by the client


async def build_plan(services: Services, ctx: RequestContext) -> Node:
    """Authenticate the caller, then turn the config (or the headers alone) into a plan."""
    await authenticate(services, ctx)
    config = await _config(services, ctx)
    if config is None:
        if ctx.virtual_key and not ctx.provider:
            vk = await resolve_virtual_key(services, ctx, ctx.virtual_key)
            leaf = virtual_key_leaf(vk, "config", _Inherited())
            options = stored_options_win(leaf.options, ctx.options)
            return _apply_headers(ctx, replace(leaf, options=options))
        return header_leaf(ctx)
    saved = ctx.config is None or ctx.config_id is not None
    return await _node(services, ctx, config, "config", _Inherited(saved=saved))


async def authenticate(services: Services, ctx: RequestContext) -> None:
    """Who is calling (401 when a key is required and missing or bad), and may it run requests."""
    ctx.principal = await services.resolver.authenticate(ctx.api_key)
    ensure_inference(ctx.principal)


async def _config(services: Services, ctx: RequestContext) -> ConfigNode | None:
    text = ctx.config
    if text is None and ctx.principal is not None and ctx.principal.default_config:
        text = ctx.principal.default_config
    elif text is not None and not text.lstrip().startswith("{"):
        ensure_config_allowed(ctx.principal, text.strip())  # the key's default is always allowed
    if text is None:
        return None
    if text.lstrip().startswith("{"):
        return services.configs.parse(text)
    if ctx.principal is None:
        raise AuthenticationFailed("saved configs can only be used with a gateway API key "
                                   "(x-portkey-api-key)", param="x-portkey-api-key")
    ctx.config_id = text.strip()
    return validate_config(dict(await services.resolver.saved_config(ctx.config_id)))


def _inherit(parent: _Inherited, node: ConfigNode) -> _Inherited:
    retry = parent.retry
    if node.retry is not None:
        codes = node.retry.on_status_codes
        retry = RetryPolicy(node.retry.attempts,
                            DEFAULT_RETRY_CODES if codes is None else frozenset(codes),
                            node.retry.use_retry_after_header, explicit_codes=codes is not None)
    cache = parent.cache
    if node.cache is not None:
        cache = CachePolicy(node.cache.mode, node.cache.max_age)
    return _Inherited(
        override_params={**parent.override_params, **(node.override_params or {})},
        retry=retry, cache=cache,
        request_timeout_ms=node.request_timeout or parent.request_timeout_ms,
        custom_host=node.custom_host or parent.custom_host,
        forward_headers=tuple(h.lower() for h in node.forward_headers)
        if node.forward_headers is not None else parent.forward_headers,
        saved=parent.saved,
    )


async def _node(services: Services, ctx: RequestContext, node: ConfigNode, path: str,
                parent: _Inherited) -> Node:
    inherited = _inherit(parent, node)
    if node.targets is None:
        return _apply_headers(ctx, await _leaf(services, ctx, node, path, inherited))
    assert node.strategy is not None
    children = tuple([
        await _node(services, ctx, child, f"{path}.targets[{i}]", inherited)
        for i, child in enumerate(node.targets)
    ])
    names = {child.name: i for i, child in enumerate(node.targets) if child.name}
    strategy = node.strategy
    return Branch(
        path=path, mode=strategy.mode, children=children,
        weights=tuple(child.weight for child in node.targets),
        on_status_codes=None if strategy.on_status_codes is None
        else frozenset(strategy.on_status_codes),
        conditions=tuple(ConditionRule(c.query, names[c.then])
                         for c in strategy.conditions or ()),
        default=names.get(strategy.default) if strategy.default else None,
    )


async def _leaf(services: Services, ctx: RequestContext, node: ConfigNode, path: str,
                inherited: _Inherited) -> Leaf:
    if node.virtual_key:
        vk = await resolve_virtual_key(services, ctx, node.virtual_key)
        leaf = virtual_key_leaf(vk, path, inherited)
        if inherited.saved:  # both the admin's
            return replace(leaf, options={**leaf.options, **node.options()})
        return replace(leaf, options=stored_options_win(leaf.options, node.options()))
    provider = node.provider or ctx.provider
    if provider is None:
        raise InvalidRequest(f"{path}: no provider: give the target a provider or a "
                             "virtual_key, or send x-portkey-provider", param="x-portkey-config",
                             code="missing_provider")
    # A target without its own key uses the request's Authorization, as Portkey's does.
    api_key = node.api_key if node.api_key is not None else ctx.provider_key
    options = node.options()
    # A saved config's api_key or credential option is a stored secret (destinations.py).
    stored = inherited.saved and (node.api_key is not None or has_credential_option(options))
    return Leaf(path=path, provider=provider, api_key=api_key, stored_key=stored,
                options=stored_options_win(options, ctx.options) if stored
                else {**ctx.options, **options},
                **_hosts(inherited, None), **_leaf_fields(inherited))


def _hosts(inherited: _Inherited, stored: str | None) -> dict[str, str | None]:
    """A saved config's custom host is a stored base URL; an inline one is the client's."""
    if inherited.saved and inherited.custom_host:
        return {"base_url": inherited.custom_host, "custom_host": None}
    return {"base_url": stored, "custom_host": inherited.custom_host}


def _leaf_fields(inherited: _Inherited) -> dict[str, Any]:
    return {"override_params": inherited.override_params, "retry": inherited.retry,
            "request_timeout_ms": inherited.request_timeout_ms,
            "forward_headers": inherited.forward_headers, "cache": inherited.cache}


def _apply_headers(ctx: RequestContext, leaf: Leaf) -> Leaf:
    """Headers win over the config: custom host, forward headers (timeout: in attempt)."""
    changes: dict[str, Any] = {}
    if ctx.custom_host:
        changes["custom_host"] = ctx.custom_host
    if ctx.forward_headers is not None:
        changes["forward_headers"] = ctx.forward_headers
    return replace(leaf, **changes) if changes else leaf


async def resolve_virtual_key(services: Services, ctx: RequestContext, slug: str) -> VirtualKey:
    if ctx.principal is None:
        raise AuthenticationFailed("virtual keys can only be used with a gateway API key "
                                   "(x-portkey-api-key)", param="x-portkey-api-key")
    vk = await services.resolver.virtual_key(slug)
    ensure_virtual_key_allowed(ctx.principal, vk)
    ctx.virtual_key_id = vk.id
    ctx.virtual_key_obj = vk
    return vk


def virtual_key_leaf(vk: VirtualKey, path: str, inherited: _Inherited) -> Leaf:
    return Leaf(path=path, provider=vk.provider, api_key=vk.secret, virtual_key=vk,
                options=dict(vk.options), **_hosts(inherited, vk.custom_host),
                **_leaf_fields(inherited))


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

"""Plan: a pure function from the resolved request to a tree of strategies over leaves.

No I/O: the resolve stage fetched the caller, the config and its virtual keys.

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

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

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
from gateway.contracts.request import ParsedRequest
from gateway.errors import InvalidRequest
from gateway.guardrails.hooks import NO_HOOKS, HookSet, inherit
from gateway.routing.config import ConfigNode
from gateway.security.destinations import has_credential_option, stored_options_win

# Virtual keys the resolve stage fetched, by the slug the request or config used.
VirtualKeys = Mapping[str, VirtualKey]

@dataclass(frozen=True, slots=True)
class _Inherited:
    override_params: dict[str, Any] = field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    cache: CachePolicy | None = None
    request_timeout_ms: int | None = None
    custom_host: str | None = None
    forward_headers: tuple[str, ...] = ()
    saved: bool = False  # the config was written by an admin, not sent by the client
    hooks: HookSet = NO_HOOKS
    defaults: HookSet = NO_HOOKS  # the root's default guardrails: every target runs them


def build_plan(request: ParsedRequest, config: ConfigNode | None, *, saved: bool,
               virtual_keys: VirtualKeys) -> Node:
    """The config (or the headers alone) as a plan. `saved`: an admin wrote the config."""
    if config is None:
        if request.virtual_key and not request.provider:
            vk = virtual_keys[request.virtual_key]
            leaf = virtual_key_leaf(vk, "config", _Inherited())
            options = stored_options_win(leaf.options, request.options)
            return _apply_headers(request, replace(leaf, options=options))
        return header_leaf(request)
    return _node(request, virtual_keys, config, "config",
                 _Inherited(saved=saved, defaults=config.hooks.defaults))


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
        hooks=inherit(parent.hooks, node.hooks),
        defaults=parent.defaults,
    )


def _node(request: ParsedRequest, virtual_keys: VirtualKeys, node: ConfigNode, path: str,
          parent: _Inherited) -> Node:
    inherited = _inherit(parent, node)
    if node.targets is None:
        return _apply_headers(request, _leaf(request, virtual_keys, node, path, inherited))
    assert node.strategy is not None
    children = tuple(_node(request, virtual_keys, child, f"{path}.targets[{i}]", inherited)
                     for i, child in enumerate(node.targets))
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


def _leaf(request: ParsedRequest, virtual_keys: VirtualKeys, node: ConfigNode, path: str,
          inherited: _Inherited) -> Leaf:
    if node.virtual_key:
        vk = virtual_keys[node.virtual_key]
        leaf = virtual_key_leaf(vk, path, inherited)
        if inherited.saved:  # both the admin's
            return replace(leaf, options={**leaf.options, **node.options()})
        return replace(leaf, options=stored_options_win(leaf.options, node.options()))
    provider = node.provider or request.provider
    if provider is None:
        raise InvalidRequest(f"{path}: no provider: give the target a provider or a "
                             "virtual_key, or send x-portkey-provider", param="x-portkey-config",
                             code="missing_provider")
    # A target without its own key uses the request's Authorization, as Portkey's does.
    api_key = node.api_key if node.api_key is not None else request.provider_key
    options = node.options()
    # A saved config's api_key or credential option is a stored secret (destinations.py).
    stored = inherited.saved and (node.api_key is not None or has_credential_option(options))
    return Leaf(path=path, provider=provider, api_key=api_key, stored_key=stored,
                options=stored_options_win(options, request.options) if stored
                else {**request.options, **options},
                **_hosts(inherited, None), **_leaf_fields(inherited))


class _Hosts(TypedDict):
    base_url: str | None
    custom_host: str | None


class _LeafFields(TypedDict):
    """The Leaf fields a leaf takes from `_Inherited` as they are."""

    override_params: dict[str, Any]
    retry: RetryPolicy
    request_timeout_ms: int | None
    forward_headers: tuple[str, ...]
    cache: CachePolicy | None
    hooks: HookSet


def _hosts(inherited: _Inherited, stored: str | None) -> _Hosts:
    """A saved config's custom host is a stored base URL; an inline one is the client's."""
    if inherited.saved and inherited.custom_host:
        return {"base_url": inherited.custom_host, "custom_host": None}
    return {"base_url": stored, "custom_host": inherited.custom_host}


def _leaf_fields(inherited: _Inherited) -> _LeafFields:
    return {"override_params": inherited.override_params, "retry": inherited.retry,
            "request_timeout_ms": inherited.request_timeout_ms,
            "forward_headers": inherited.forward_headers, "cache": inherited.cache,
            "hooks": inherited.hooks.plus(inherited.defaults)}


def _apply_headers(request: ParsedRequest, leaf: Leaf) -> Leaf:
    """Headers win over the config: custom host, forward headers (timeout: in attempt)."""
    changes: dict[str, Any] = {}
    if request.custom_host:
        changes["custom_host"] = request.custom_host
    if request.forward_headers is not None:
        changes["forward_headers"] = request.forward_headers
    return replace(leaf, **changes) if changes else leaf


def virtual_key_leaf(vk: VirtualKey, path: str, inherited: _Inherited) -> Leaf:
    return Leaf(path=path, provider=vk.provider, api_key=vk.secret, virtual_key=vk,
                options=dict(vk.options), **_hosts(inherited, vk.custom_host),
                **_leaf_fields(inherited))


def header_leaf(request: ParsedRequest, provider: str | None = None) -> Leaf:
    """The single target named by x-portkey-provider and Authorization."""
    provider = provider or request.provider
    if provider is None:
        raise InvalidRequest(
            "no provider given: send x-portkey-provider (with Authorization: Bearer <key>), "
            "x-portkey-virtual-key or x-portkey-config", param="x-portkey-provider",
            code="missing_provider")
    return Leaf(path="config", provider=provider, api_key=request.provider_key,
                custom_host=request.custom_host, options=request.options,
                forward_headers=request.forward_headers or ())

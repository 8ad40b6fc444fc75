"""Resolve: who is calling, which config applies, and what its virtual keys hold.

Takes the `ParsedRequest`, asks the `Resolver` (the key store, or anonymous `NoKeyStore`)
once for each thing the request names, checks it against the caller's allow-lists, and
returns a frozen `Resolved`. Planning after this needs no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum

from gateway.contracts.identity import Principal, Resolver, VirtualKey
from gateway.contracts.request import ParsedRequest
from gateway.errors import AuthenticationFailed
from gateway.routing.config import ConfigCache, ConfigNode, validate_config
from gateway.security.access import (
    ensure_config_allowed,
    ensure_inference,
    ensure_virtual_key_allowed,
)


class Unset(Enum):
    """A caller not authenticated yet: `None` is a principal (the anonymous caller)."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True, slots=True)
class Resolved:
    principal: Principal | None
    config: ConfigNode | None = None
    config_id: str | None = None  # the saved config's id, when one applies
    saved: bool = False  # the config was written by an admin (saved, or the key's default)
    # Every virtual key the request can reach (header or config targets), by the slug used.
    virtual_keys: Mapping[str, VirtualKey] = field(default_factory=dict)


async def authenticate(resolver: Resolver, request: ParsedRequest) -> Principal | None:
    """The caller (401 when a key is required and missing or bad); may it run requests."""
    principal = await resolver.authenticate(request.api_key)
    ensure_inference(principal)
    return principal


async def resolve(resolver: Resolver, configs: ConfigCache, request: ParsedRequest,
                  principal: Principal | None | Unset = UNSET) -> Resolved:
    """`principal`: the caller when an earlier step authenticated it already (a chained
    Responses turn, to own its chain), so it is not looked up twice."""
    if isinstance(principal, Unset):
        principal = await authenticate(resolver, request)
    config, config_id = await _config(resolver, configs, request, principal)
    if config is None:
        slugs = [request.virtual_key] if request.virtual_key and not request.provider else []
    else:
        slugs = list(dict.fromkeys(_virtual_keys(config)))
    keys = {slug: await resolve_virtual_key(resolver, principal, slug) for slug in slugs}
    return Resolved(principal, config, config_id,
                    saved=config is not None and request.inline_config is None,
                    virtual_keys=keys)


async def _config(resolver: Resolver, configs: ConfigCache, request: ParsedRequest,
                  principal: Principal | None) -> tuple[ConfigNode | None, str | None]:
    if request.inline_config is not None:
        return configs.parse(request.inline_config), None
    config_id = request.saved_config
    if config_id is not None:
        ensure_config_allowed(principal, config_id)  # the key's default is always allowed
    elif principal is not None and principal.default_config:
        inline, config_id = _default(principal.default_config)
        if inline is not None:
            return configs.parse(inline), None
    if config_id is None:
        return None, None
    if principal is None:
        raise AuthenticationFailed("saved configs can only be used with a gateway API key "
                                   "(x-portkey-api-key)", param="x-portkey-api-key")
    return validate_config(dict(await resolver.saved_config(config_id))), config_id


def _default(text: str) -> tuple[str | None, str | None]:
    """A key's default config is a saved id, or (older keys) an inline JSON config."""
    return (text, None) if text.lstrip().startswith("{") else (None, text.strip())


def _virtual_keys(node: ConfigNode) -> Iterator[str]:
    if node.virtual_key:
        yield node.virtual_key
    for child in node.targets or ():
        yield from _virtual_keys(child)


async def resolve_virtual_key(resolver: Resolver, principal: Principal | None,
                              slug: str) -> VirtualKey:
    if principal is None:
        raise AuthenticationFailed("virtual keys can only be used with a gateway API key "
                                   "(x-portkey-api-key)", param="x-portkey-api-key")
    vk = await resolver.virtual_key(slug)
    ensure_virtual_key_allowed(principal, vk)
    return vk

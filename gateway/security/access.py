"""Which keys may use what: every scope check on the request path, in one module.

A gateway API key (a `Principal`) may be limited to the `inference` scope, to named virtual
keys, saved configs and models; a virtual key may be limited to models. Each check raises a
403 naming the key and the rule (README: Which keys may use what).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.contracts.identity import Principal, VirtualKey
from gateway.errors import PermissionDenied
from providers.base import Endpoint

if TYPE_CHECKING:
    from gateway.contracts.plan import Leaf
    from gateway.contracts.request import ParsedRequest


def ensure_inference(principal: Principal | None) -> None:
    """An admin-only key manages the gateway; it does not run requests through it."""
    if principal is not None and "inference" not in principal.scopes:
        raise PermissionDenied(
            f"gateway API key '{principal.name}' lacks the 'inference' scope, so it cannot "
            "call /v1/* (its scopes: " + ", ".join(sorted(principal.scopes)) + ")",
            param="x-portkey-api-key", code="inference_scope_required")


def ensure_virtual_key_allowed(principal: Principal | None, vk: VirtualKey) -> None:
    """Matched by slug or id, whichever the admin listed."""
    if principal is None or principal.allowed_virtual_keys is None:
        return
    allowed = principal.allowed_virtual_keys
    if vk.slug not in allowed and vk.id not in allowed:
        raise PermissionDenied(
            f"gateway API key '{principal.name}' may not use virtual key '{vk.slug}' "
            f"(its allowed_virtual_keys: {_listed(allowed)})",
            param="x-portkey-virtual-key", code="virtual_key_not_allowed")


def ensure_config_allowed(principal: Principal | None, ref: str) -> None:
    """A saved config named by the request (the key's own default config is always allowed)."""
    if principal is None or principal.allowed_configs is None:
        return
    allowed = principal.allowed_configs
    if ref not in allowed:
        raise PermissionDenied(
            f"gateway API key '{principal.name}' may not use saved config '{ref}' "
            f"(its allowed_configs: {_listed(allowed)})",
            param="x-portkey-config", code="config_not_allowed")


def ensure_model_allowed(principal: Principal | None, request: ParsedRequest,
                         leaf: Leaf) -> None:
    """403 when the API key or the leaf's virtual key limits its models and the model the
    upstream would be asked for (the body's, after `override_params`) is not one of them.

    Listing models runs none and is not checked; a passthrough is refused, since the model
    it runs may sit in its path (`/models/x:generateContent`, `/deployments/x/...`) or
    anywhere in its body, and cannot be told.
    """
    vk = leaf.virtual_key
    limits: list[tuple[str, frozenset[str]]] = []
    if principal is not None and principal.allowed_models is not None:
        limits.append((f"gateway API key '{principal.name}'", principal.allowed_models))
    if vk is not None and vk.allowed_models is not None:
        limits.append((f"virtual key '{vk.slug}'", vk.allowed_models))
    if not limits or request.endpoint is Endpoint.MODELS:
        return
    if request.endpoint is Endpoint.PROXY:
        raise PermissionDenied(
            f"passthrough requests are not allowed for {limits[0][0]}: it limits models "
            f"(allowed: {_listed(limits[0][1])}), and a passthrough cannot be checked against "
            "a model list", param="model", code="model_not_allowed")
    model = requested_model(request.body, leaf.override_params)
    for holder, allowed in limits:
        if model not in allowed:
            raise PermissionDenied(
                f"model '{model}' is not allowed for {holder} (allowed: {_listed(allowed)})",
                param="model", code="model_not_allowed")


def requested_model(body: Mapping[str, Any] | None,
                    override_params: Mapping[str, Any]) -> str | None:
    """The model the upstream will be asked for: the body's, after `override_params`."""
    model = override_params["model"] if "model" in override_params else (body or {}).get("model")
    return model if isinstance(model, str) else None


def _listed(values: frozenset[str]) -> str:
    return ", ".join(sorted(values)) or "none"

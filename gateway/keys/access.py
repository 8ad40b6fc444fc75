"""Checks made on the request path once the final target and model are known."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import PermissionDenied
from gateway.resolve import VirtualKey


def ensure_model_allowed(vk: VirtualKey | None, body: Mapping[str, Any] | None) -> None:
    """403 when a virtual key limits its models and the request names another one."""
    if vk is None or vk.allowed_models is None:
        return
    model = (body or {}).get("model")
    if model not in vk.allowed_models:
        allowed = ", ".join(sorted(vk.allowed_models)) or "none"
        raise PermissionDenied(
            f"model '{model}' is not allowed for virtual key '{vk.slug}' (allowed: {allowed})",
            param="model", code="model_not_allowed")

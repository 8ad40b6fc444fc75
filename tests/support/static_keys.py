"""An in-memory key store for tests of limits, until the real key store (issue 4) is merged.

Keys are given as plain data: {"<api key>": {"id", "name", "limits": {...}}}, and virtual keys
as {"<slug>": {"id", "provider", "secret", "limits": {...}}}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import AuthenticationFailed, NotFound
from gateway.resolve import Limits, Principal, VirtualKey


class StaticResolver:
    def __init__(self, keys: Mapping[str, Mapping[str, Any]],
                 virtual_keys: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.keys = {key: Principal(id=spec["id"], name=spec.get("name", spec["id"]),
                                    scopes=frozenset({"inference"}),
                                    limits=Limits(**spec.get("limits", {})))
                     for key, spec in keys.items()}
        self.virtual_keys = {
            slug: VirtualKey(id=spec["id"], slug=slug, provider=spec["provider"],
                             secret=spec.get("secret"), limits=Limits(**spec.get("limits", {})))
            for slug, spec in (virtual_keys or {}).items()}

    async def authenticate(self, api_key: str | None) -> Principal | None:
        if api_key is None:
            return None
        principal = self.keys.get(api_key)
        if principal is None:
            raise AuthenticationFailed("invalid gateway API key", param="x-portkey-api-key")
        return principal

    async def virtual_key(self, slug: str) -> VirtualKey:
        if slug not in self.virtual_keys:
            raise NotFound(f"virtual key '{slug}' not found", param="x-portkey-virtual-key")
        return self.virtual_keys[slug]

    async def saved_config(self, config_id: str) -> Mapping[str, Any]:
        raise NotFound(f"config '{config_id}' not found", param="x-portkey-config")

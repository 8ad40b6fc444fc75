"""Keys with limits, created through the admin API of a running gateway's real key store.

Tests name their keys by alias ("gk-test"); `issued_key(alias)` is the key the store issued
and `issued_id(alias)` its id. Gateways need `key_store_settings()` for the admin API.
"""

from __future__ import annotations

from typing import Any

from tests.support.databases import ADMIN_TOKEN, admin_client, new_master_key
from tests.support.keys import create_virtual_key
from tests.support.servers import ThreadedServer

_ISSUED: dict[str, dict[str, str]] = {}


def key_store_settings() -> dict[str, Any]:
    return {"admin_token": ADMIN_TOKEN, "master_key": new_master_key()}


def sdk_limits(limits: dict[str, Any]) -> dict[str, Any]:
    """{"rpm": 5, "tpm": .., "max_concurrent": .., "budget_usd": .., "budget_period": ..} in
    the portkey-ai SDK's `rate_limits` / `usage_limits` shapes."""
    rate = [{"type": kind, "unit": unit, "value": limits[name]}
            for name, kind, unit in (("rpm", "requests", "rpm"), ("rph", "requests", "rph"),
                                     ("rpd", "requests", "rpd"), ("tpm", "tokens", "rpm"))
            if limits.get(name)]
    if limits.get("max_concurrent"):
        rate.append({"type": "concurrency", "value": limits["max_concurrent"]})
    fields: dict[str, Any] = {"rate_limits": rate} if rate else {}
    if limits.get("budget_usd"):
        fields["usage_limits"] = {"credit_limit": limits["budget_usd"],
                                  "periodic_reset": limits.get("budget_period")}
    return fields


def with_keys(server: ThreadedServer, keys: dict[str, Any],
              virtual_keys: dict[str, Any] | None = None) -> ThreadedServer:
    """Create API keys ({alias: {"name", "limits"}}) and virtual keys ({slug: {"provider",
    "secret", "limits"}}) in the gateway's key store."""
    with admin_client(server) as admin:
        for alias, spec in keys.items():
            response = admin.post("/admin/api-keys", json={
                "name": spec.get("name", alias), "scopes": ["inference"],
                **sdk_limits(spec.get("limits", {}))})
            assert response.status_code == 201, response.text
            _ISSUED[alias] = {"key": response.json()["key"], "id": response.json()["id"]}
    for slug, spec in (virtual_keys or {}).items():
        create_virtual_key(server, name=slug, slug=slug, provider=spec["provider"],
                           key=spec["secret"], **sdk_limits(spec.get("limits", {})))
    return server


def issued_key(alias: str) -> str:
    return _ISSUED[alias]["key"]


def issued_id(alias: str) -> str:
    return _ISSUED[alias]["id"]

"""Cache keys: what makes two requests the same request."""

from __future__ import annotations

import hashlib

import orjson

from gateway.context import RequestContext
from gateway.routing.leaf import Leaf
from providers.base import Endpoint

CACHEABLE = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS})
NAMESPACE_HEADER = "x-portkey-cache-namespace"
FORCE_REFRESH_HEADER = "x-portkey-cache-force-refresh"

# Fields that change how an answer is delivered, not what it says: a streamed request and a
# plain one share their entry.
_DELIVERY_FIELDS = ("stream", "stream_options")


def cache_key(ctx: RequestContext, leaf: Leaf) -> str:
    """SHA-256 over endpoint, provider (and its host), body, namespace and virtual key."""
    body = {**(ctx.body or {}), **leaf.override_params}
    for name in _DELIVERY_FIELDS:
        body.pop(name, None)
    parts = {
        "endpoint": ctx.endpoint.value,
        "provider": leaf.provider,
        "host": leaf.custom_host or leaf.base_url,
        "model": body.get("model"),
        "body": body,
        "namespace": ctx.headers.get(NAMESPACE_HEADER),
        "virtual_key": leaf.virtual_key.id if leaf.virtual_key else None,
    }
    canonical = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(canonical).hexdigest()

"""Cache keys: what makes two requests the same request."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gateway.contracts.plan import Leaf
from gateway.contracts.request import ParsedRequest
from providers.base import Endpoint

CACHEABLE = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS})
NAMESPACE_HEADER = "x-portkey-cache-namespace"
FORCE_REFRESH_HEADER = "x-portkey-cache-force-refresh"

# Fields that change how an answer is delivered, not what it says: a streamed request and a
# plain one share their entry.
_DELIVERY_FIELDS = ("stream", "stream_options")


def cache_key(request: ParsedRequest, leaf: Leaf, sent: dict[str, Any] | None) -> str:
    """SHA-256 over endpoint, provider (and its host), body, namespace, and everything that
    decides who answers and as whom: the virtual key, the credential, the provider options and
    the forwarded headers. A request is answered from the cache only with what its own
    credential, sent to the same place, could have fetched. `sent`: the body after the
    target's override_params."""
    body = dict(sent or {})
    forwarded = request.forward_headers if request.forward_headers is not None \
        else leaf.forward_headers
    for name in _DELIVERY_FIELDS:
        body.pop(name, None)
    parts = {
        "endpoint": request.endpoint.value,
        "provider": leaf.provider,
        "host": leaf.custom_host or leaf.base_url,
        "model": body.get("model"),
        "body": body,
        "namespace": request.headers.get(NAMESPACE_HEADER),
        "virtual_key": leaf.virtual_key.id if leaf.virtual_key else None,
        # Hashed with the rest, never stored: a bogus key must not read a real key's answers.
        "credential": leaf.api_key,
        "options": dict(leaf.options),
        "forwarded": {name: request.headers.get(name) for name in forwarded},
    }
    canonical = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(canonical).hexdigest()

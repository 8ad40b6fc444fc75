"""Parse: the client's headers and body become one typed `RequestContext`.

Bad input fails here, with a 400 that names the header or field at fault.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.datastructures import Headers

from gateway.contracts.identity import Principal, VirtualKey
from gateway.errors import InvalidRequest
from gateway.usage.tokens import TextSample, Tokens
from providers import REGISTRY
from providers.base import Endpoint

PREFIX = "x-portkey-"
# Headers never copied upstream, even when a client lists them in forward-headers.
HOP_BY_HOP = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "expect",
    "upgrade", "te", "trailer", "proxy-authorization", "proxy-connection", "accept-encoding",
})
# Client headers that carry a credential (never forwarded beside a secret the gateway supplies).
CREDENTIAL_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie",
})


@dataclass(slots=True)
class Attempt:
    """One upstream call, kept for the response headers and the usage record."""

    path: str
    provider: str
    status: int | None = None
    latency_ms: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "provider": self.provider, "status": self.status,
                "latency_ms": round(self.latency_ms, 3), "error": self.error}


@dataclass(slots=True)
class RequestContext:
    request_id: str
    trace_id: str
    endpoint: Endpoint
    method: str
    path: str  # below /v1/, e.g. "chat/completions"
    query: str
    headers: Headers
    raw_body: bytes
    body: dict[str, Any] | None
    provider: str | None = None
    provider_key: str | None = None
    config: str | None = None
    custom_host: str | None = None
    forward_headers: tuple[str, ...] | None = None
    request_timeout_ms: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None
    virtual_key: str | None = None
    # Every other x-portkey-* header, by suffix: provider options such as azure-resource-name.
    options: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # What happened, filled in as the request runs.
    attempts: list[Attempt] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    answered_by: str | None = None  # the provider of the leaf that answered
    option_path: str | None = None
    retry_count: int = 0
    status: int | None = None
    ttfb_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    principal: Principal | None = None
    virtual_key_id: str | None = None
    virtual_key_obj: VirtualKey | None = None
    config_id: str | None = None
    model: str | None = None  # the model sent upstream, after override_params
    # Generated text seen (streamed or read), capped, for estimates; and those estimated tokens.
    completion: TextSample = field(default_factory=TextSample)
    estimated_tokens: Tokens | None = None  # set before the recorders run, when needed
    response_body: str | None = None  # kept only when GATEWAY_LOG_BODIES is on
    upstream_ms: float = 0.0  # time spent waiting on upstreams
    backoff_ms: float = 0.0  # time spent sleeping between retries
    finished_ms: float | None = None
    cache_status: str | None = None
    cost_usd: Decimal | None = None
    priced: bool = False  # the usage log priced it: cost_usd None means no known price
    prompt_id: str | None = None
    prompt_version: int | None = None
    recorded: bool = False
    limit_ticket: Any = None  # what the limiter holds for this request until it finishes

    @property
    def stream(self) -> bool:
        return bool(self.body and self.body.get("stream"))

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


_KNOWN = {
    "provider", "config", "custom-host", "forward-headers", "request-timeout", "trace-id",
    "metadata", "api-key", "virtual-key",
}


def parse_request(
    *, endpoint: Endpoint, method: str, path: str, query: str, headers: Headers,
    raw_body: bytes, request_id: str, trace_id: str,
) -> RequestContext:
    body = _parse_body(endpoint, raw_body)
    if endpoint is Endpoint.PROXY:
        _check_proxy_path(path)
    ctx = RequestContext(
        request_id=request_id, trace_id=trace_id, endpoint=endpoint, method=method, path=path,
        query=query, headers=headers, raw_body=raw_body, body=body,
    )
    # One pass over the headers (each Headers.get would scan them all again); the first
    # occurrence of a repeated header wins, as with Headers.get.
    portkey: dict[str, str] = {}
    for name, value in reversed(headers.items()):
        if name.startswith(PREFIX):
            portkey[name[len(PREFIX):]] = value
    ctx.provider = _provider(portkey.get("provider"))
    ctx.provider_key = _bearer(headers.get("authorization"))
    ctx.config = portkey.get("config") or None
    ctx.custom_host = portkey.get("custom-host") or None
    ctx.forward_headers = _forward_headers(portkey.get("forward-headers"))
    ctx.request_timeout_ms = _timeout(portkey.get("request-timeout"))
    ctx.metadata = _metadata(portkey.get("metadata"))
    ctx.api_key = portkey.get("api-key") or None
    ctx.virtual_key = portkey.get("virtual-key") or None
    ctx.options = {name: value for name, value in portkey.items() if name not in _KNOWN}
    return ctx


_ENCODED_SEPARATORS = ("%2f", "%2e", "%5c", "%3f", "%23")


def _check_proxy_path(path: str) -> None:
    """A passthrough path is appended to the target's base URL: it may not climb out of it
    (`..`, which URL normalisation would apply) nor carry a query or fragment of its own
    (the path arrives percent-decoded, so `%2F..%2F` and `%3F` are caught here too)."""
    bad = next((c for c in ("?", "#", "\\") if c in path), None)
    if bad is None:  # an upstream may decode these once more, then normalise
        lowered = path.lower()
        bad = next((c for c in _ENCODED_SEPARATORS if c in lowered), None)
    if bad is None:
        bad = next((s for s in path.split("/") if s in (".", "..")), None)
    if bad is None and any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        bad = "a control character"
    if bad is not None:
        raise InvalidRequest(f"the passthrough path /v1/{path} contains {bad!r}, which could "
                             "move the request outside the provider's API",
                             param="path", code="invalid_path")


def _parse_body(endpoint: Endpoint, raw: bytes) -> dict[str, Any] | None:
    if endpoint in (Endpoint.PROXY, Endpoint.MODELS):
        return None
    if not raw.strip():
        raise InvalidRequest("request body is empty; send a JSON object", code="invalid_body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}",
                             code="invalid_body") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_body")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    return body


def _provider(value: str | None) -> str | None:
    if not value:
        return None
    slug = value.strip().lower()
    if slug not in REGISTRY:
        raise InvalidRequest(
            f"unknown provider '{value}' in x-portkey-provider; known providers: "
            + ", ".join(sorted(REGISTRY)), param="x-portkey-provider", code="invalid_provider")
    return slug


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else value.strip()
    return token or None


def _forward_headers(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(n.strip().lower() for n in value.split(",") if n.strip())
    if any(n.startswith(PREFIX) for n in names):
        raise InvalidRequest("x-portkey-forward-headers may not list x-portkey-* headers",
                             param="x-portkey-forward-headers")
    return names


def _timeout(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        ms = int(value)
    except ValueError:
        raise InvalidRequest(f"x-portkey-request-timeout must be whole milliseconds, got '{value}'",
                             param="x-portkey-request-timeout") from None
    if ms <= 0:
        raise InvalidRequest("x-portkey-request-timeout must be positive",
                             param="x-portkey-request-timeout")
    return ms


def _metadata(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidRequest("x-portkey-metadata is not valid JSON",
                             param="x-portkey-metadata", code="invalid_metadata") from None
    if not isinstance(data, dict):
        raise InvalidRequest("x-portkey-metadata must be a JSON object",
                             param="x-portkey-metadata", code="invalid_metadata")
    bad = [k for k, v in data.items() if not isinstance(v, str)]
    if bad:
        raise InvalidRequest(
            "x-portkey-metadata values must be strings; not strings: " + ", ".join(bad),
            param="x-portkey-metadata", code="invalid_metadata")
    return data

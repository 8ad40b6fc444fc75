"""Parse: the client's headers and body become one frozen `ParsedRequest`.

Bad input fails here, with a 400 that names the header or field at fault.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import Headers

from gateway.contracts.request import PREFIX, ParsedRequest
from gateway.errors import InvalidRequest
from gateway.guardrails.config import parse_header
from gateway.guardrails.hooks import AFTER, BEFORE, NO_HOOKS, HookSet
from providers import REGISTRY
from providers.base import Endpoint

_KNOWN = {
    "provider", "config", "custom-host", "forward-headers", "request-timeout", "trace-id",
    "metadata", "api-key", "virtual-key", "default-input-guardrails",
    "default-output-guardrails",
}


def parse_request(
    *, endpoint: Endpoint, method: str, path: str, query: str, headers: Headers,
    raw_body: bytes, body: dict[str, Any] | None, dialect: str, request_id: str,
    trace_id: str, native_body: dict[str, Any] | None = None,
    native_only: tuple[str, str] | None = None,
) -> ParsedRequest:
    """`body` is the canonical body the client's dialect decoded from `raw_body`;
    `native_body` the client's own, when some providers take its dialect as it is."""
    if endpoint is Endpoint.PROXY:
        _check_proxy_path(path)
    # One pass over the headers (each Headers.get would scan them all again); the first
    # occurrence of a repeated header wins, as with Headers.get.
    portkey: dict[str, str] = {}
    for name, value in reversed(headers.items()):
        if name.startswith(PREFIX):
            portkey[name[len(PREFIX):]] = value
    inline, saved = config_ref(portkey.get("config"))
    return ParsedRequest(
        request_id=request_id, trace_id=trace_id, endpoint=endpoint, method=method, path=path,
        query=query, headers=headers, raw_body=raw_body, body=body, dialect=dialect,
        native_body=native_body, native_only=native_only,
        provider=_provider(portkey.get("provider")),
        # Anthropic's SDKs and Claude Code send the key as x-api-key.
        provider_key=_bearer(headers.get("authorization"))
        or (headers.get("x-api-key") or "").strip() or None,
        inline_config=inline, saved_config=saved,
        custom_host=portkey.get("custom-host") or None,
        forward_headers=_forward_headers(portkey.get("forward-headers")),
        request_timeout_ms=_timeout(portkey.get("request-timeout")),
        metadata=_metadata(portkey.get("metadata")),
        api_key=portkey.get("api-key") or None,
        virtual_key=portkey.get("virtual-key") or None,
        options={name: value for name, value in portkey.items() if name not in _KNOWN},
        default_hooks=_default_hooks(portkey),
    )


def _default_hooks(portkey: dict[str, str]) -> HookSet:
    """x-portkey-default-input-guardrails / -output-guardrails: JSON arrays of shorthand
    guardrails every target of this request runs, after its config's own."""
    before = portkey.get("default-input-guardrails")
    after = portkey.get("default-output-guardrails")
    if not before and not after:
        return NO_HOOKS
    return HookSet(
        parse_header(before, BEFORE, f"{PREFIX}default-input-guardrails") if before else (),
        parse_header(after, AFTER, f"{PREFIX}default-output-guardrails") if after else ())


def config_ref(value: str | None) -> tuple[str | None, str | None]:
    """x-portkey-config is an inline JSON object or a saved config's id: (inline, saved)."""
    if not value or not value.strip():
        return None, None
    if value.lstrip().startswith("{"):
        return value, None
    return None, value.strip()


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

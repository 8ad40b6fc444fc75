"""One usage row per request, built from its finished RequestContext."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from gateway.context import RequestContext
from gateway.usage.pricing import PriceBook
from gateway.usage.tokens import Tokens, estimate, from_usage
from providers.base import Endpoint

_MESSAGE_LIMIT = 500
_BODY_LIMIT = 16_384
# Request-body keys that may carry secrets and are never stored, even with body logging on.
_SECRET_KEYS = frozenset({"api_key", "apikey", "authorization", "key", "secret", "password",
                          "aws_secret_access_key", "aws_session_token", "token"})


def tokens_of(ctx: RequestContext) -> Tokens | None:
    if ctx.usage:
        tokens = from_usage(ctx.usage)
        if tokens is not None:
            return tokens
    if ctx.status is None or ctx.status >= 400 or ctx.cache_status == "HIT" and not ctx.usage:
        return None
    return estimate(ctx.body, "".join(ctx.completion_parts))


def cost_of(ctx: RequestContext, tokens: Tokens | None, prices: PriceBook) -> Decimal | None:
    if ctx.cache_status == "HIT":
        return Decimal(0)
    if tokens is None:
        return Decimal(0) if ctx.status is not None and ctx.status >= 400 else None
    vk = ctx.virtual_key_obj
    price = prices.price(ctx.answered_by or ctx.provider or "", ctx.model,
                         vk.prices if vk is not None else None)
    if price is None:
        return None
    return price.cost(tokens.prompt, tokens.completion, tokens.cached)


def build_row(ctx: RequestContext, prices: PriceBook, log_bodies: bool) -> dict[str, Any]:
    tokens = tokens_of(ctx)
    cost = cost_of(ctx, tokens, prices)
    ctx.cost_usd = cost
    latency = ctx.finished_ms if ctx.finished_ms is not None else ctx.elapsed_ms()
    upstream = ctx.upstream_ms
    row: dict[str, Any] = {
        "id": ctx.request_id, "created_at": ctx.created_at, "trace_id": ctx.trace_id,
        "api_key_id": ctx.principal.id if ctx.principal else None,
        "virtual_key_id": ctx.virtual_key_id, "config_id": ctx.config_id,
        "endpoint": f"proxy:{ctx.path}" if ctx.endpoint is Endpoint.PROXY else ctx.endpoint.value,
        "provider": ctx.answered_by or ctx.provider, "model": ctx.model,
        "stream": ctx.stream, "status_code": ctx.status,
        "error_type": ctx.error_type,
        "error_message": (ctx.error_message or "")[:_MESSAGE_LIMIT] or None,
        "prompt_tokens": tokens.prompt if tokens else None,
        "completion_tokens": tokens.completion if tokens else None,
        "cached_tokens": tokens.cached if tokens else None,
        "total_tokens": tokens.total if tokens else None,
        "tokens_estimated": bool(tokens and tokens.estimated),
        "cost_usd": cost,
        # Times as measured: rounding five floats was a tenth of the row's cost.
        "latency_ms": latency, "ttfb_ms": ctx.ttfb_ms, "upstream_latency_ms": upstream,
        "gateway_overhead_ms": max(latency - upstream - ctx.backoff_ms, 0.0),
        "retry_count": ctx.retry_count,
        "last_used_option": ctx.option_path,
        "cache_status": ctx.cache_status,
        "metadata": ctx.metadata or None,
        "attempts": [attempt.as_dict() for attempt in ctx.attempts] or None,
        "prompt_id": ctx.prompt_id, "prompt_version": ctx.prompt_version,
        "request_body": None, "response_body": None,
    }
    if log_bodies:
        row["request_body"] = _truncate(_scrub(ctx.body) if ctx.body else None)
        row["response_body"] = _truncate(ctx.response_body)
    return row


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "[redacted]" if k.lower() in _SECRET_KEYS else _scrub(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _truncate(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text[:_BODY_LIMIT]

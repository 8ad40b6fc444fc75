"""One usage row per request, built from its finished RequestContext."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from gateway.contracts.request import RequestContext
from gateway.usage.pricing import PriceBook
from gateway.usage.tokens import Tokens, estimate, from_usage
from providers.base import Endpoint

_MESSAGE_LIMIT = 500
_BODY_LIMIT = 16_384
_NO_TOKENS = (None, None, None, None, False)  # the token columns of a row without tokens
# Request-body keys that may carry secrets and are never stored, even with body logging on.
_SECRET_KEYS = frozenset({"api_key", "apikey", "authorization", "key", "secret", "password",
                          "aws_secret_access_key", "aws_session_token", "token"})


def tokens_of(ctx: RequestContext) -> Tokens | None:
    """The upstream's counts; else those estimated before the recorders ran (Services.record);
    else, for a request recorded another way, estimated here."""
    if ctx.usage:
        tokens = from_usage(ctx.usage)
        if tokens is not None:
            return tokens
    if ctx.estimated_tokens is not None:
        return ctx.estimated_tokens
    return estimate(ctx.body, ctx.completion) if needs_estimate(ctx) else None


def needs_estimate(ctx: RequestContext) -> bool:
    """Whether the request's tokens must be counted locally: it has no usable usage from the
    upstream, and either succeeded, or generated text before it failed (a client that left
    mid-stream is billed for what it was sent), or its client left while the upstream was
    working on it (`left_during_work`). A failure that generated nothing costs 0; a cache hit
    costs nothing."""
    if ctx.usage and from_usage(ctx.usage) is not None:
        return False
    if ctx.estimated_tokens is not None or ctx.cache_status == "HIT":
        return False
    if ctx.completion.chars:
        return True
    if ctx.status is not None and ctx.status < 400:
        return True
    return left_during_work(ctx)


def left_during_work(ctx: RequestContext) -> bool:
    """The client disconnected while its last upstream call was in flight (a non-stream
    answer not yet back) or answering (a stream being relayed, even with no text yet): the
    upstream did, and bills, the work, so the request is billed at least its estimated
    prompt. A client that leaves before any call, or while the gateway waits to retry a
    failed one, costs nothing."""
    if ctx.error_type != "client_disconnect" or not ctx.attempts:
        return False
    status = ctx.attempts[-1].status
    return status is None or status < 400


def cost_of(ctx: RequestContext, tokens: Tokens | None, prices: PriceBook) -> Decimal | None:
    if ctx.cache_status == "HIT":
        return Decimal(0)
    if tokens is None:
        return Decimal(0) if ctx.status is not None and ctx.status >= 400 else None
    vk = ctx.virtual_key_obj
    # A call the client left mid-way was answered by no one: priced at the provider it went to.
    provider = ctx.answered_by or (ctx.attempts[-1].provider if ctx.attempts else None) \
        or ctx.provider
    price = prices.price(provider or "", ctx.model,
                         vk.prices if vk is not None else None)
    if price is None:
        return None
    return price.cost(tokens.prompt, tokens.completion, tokens.cached)


def price_request(ctx: RequestContext, prices: PriceBook) -> Tokens | None:
    """The request's tokens, and its cost set on the context (`cost_usd`; `priced` says it
    was looked for): done as the request finishes, for the recorders after the usage log
    (metrics, limits), while the row itself is built a little later (setup.UsageLog)."""
    tokens = tokens_of(ctx)
    ctx.cost_usd, ctx.priced = cost_of(ctx, tokens, prices), True
    return tokens


def row_values(ctx: RequestContext, tokens: Tokens | None, log_bodies: bool) -> list[Any]:
    """The row of a priced request (price_request gave `tokens`): its values in table order
    (codec.COLUMNS), as codec.encode_values takes them. A list, not a dict by column name:
    the dict and the reordering cost a fifth of the row."""
    latency = ctx.finished_ms if ctx.finished_ms is not None else ctx.elapsed_ms()
    upstream = ctx.upstream_ms
    principal = ctx.principal
    bodies = (_truncate(_scrub(ctx.body) if ctx.body else None), _truncate(ctx.response_body)) \
        if log_bodies else (None, None)
    return [  # in the order of the columns, named on the right where they differ
        ctx.request_id, ctx.created_at, ctx.trace_id,
        principal.id if principal else None, ctx.virtual_key_id, ctx.config_id,  # api_key_id
        f"proxy:{ctx.path}" if ctx.endpoint is Endpoint.PROXY else ctx.endpoint.value,
        ctx.answered_by or ctx.provider, ctx.model,  # provider
        ctx.stream, ctx.status, ctx.error_type,  # status_code
        (ctx.error_message or "")[:_MESSAGE_LIMIT] or None,
        # prompt, completion, cached and total tokens, tokens_estimated
        *((tokens.prompt, tokens.completion, tokens.cached, tokens.total, tokens.estimated)
          if tokens else _NO_TOKENS),
        ctx.cost_usd,
        # Times as measured: rounding five floats was a tenth of the row's cost.
        latency, ctx.ttfb_ms, upstream,  # latency_ms, ttfb_ms, upstream_latency_ms
        max(latency - upstream - ctx.backoff_ms, 0.0),  # gateway_overhead_ms
        ctx.retry_count, ctx.option_path, ctx.cache_status,  # last_used_option
        ctx.metadata or None,
        [attempt.as_dict() for attempt in ctx.attempts] or None,
        ctx.prompt_id, ctx.prompt_version,
        *bodies,  # request_body, response_body
    ]


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

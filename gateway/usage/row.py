"""One usage row per request, built from its finished `Outcome`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from gateway.contracts.outcome import Outcome, Tokens
from gateway.usage import verdicts
from gateway.usage.pricing import PriceBook
from gateway.usage.tokens import estimate, from_usage
from providers.base import Endpoint

_MESSAGE_LIMIT = 500
_BODY_LIMIT = 16_384
_NO_TOKENS = (None, None, None, None, False)  # the token columns of a row without tokens
# Request-body keys that may carry secrets and are never stored, even with body logging on.
_SECRET_KEYS = frozenset({"api_key", "apikey", "authorization", "key", "secret", "password",
                          "aws_secret_access_key", "aws_session_token", "token"})


def tokens_of(outcome: Outcome) -> Tokens | None:
    """The upstream's counts; else those estimated before the recorders ran (pipeline/record.py);
    else, for a request recorded another way, estimated here."""
    if outcome.usage:
        tokens = from_usage(outcome.usage)
        if tokens is not None:
            return tokens
    if outcome.estimated_tokens is not None:
        return outcome.estimated_tokens
    return estimate(outcome.request.body, outcome.completion) if needs_estimate(outcome) else None


def needs_estimate(outcome: Outcome) -> bool:
    """Whether the request's tokens must be counted locally: it has no usable usage from the
    upstream, and either succeeded, or generated text before it failed (a client that left
    mid-stream is billed for what it was sent), or its client left while the upstream was
    working on it (`left_during_work`). A failure that generated nothing costs 0; a cache hit
    costs nothing."""
    if outcome.usage and from_usage(outcome.usage) is not None:
        return False
    if outcome.estimated_tokens is not None or outcome.cache_status == "HIT":
        return False
    if outcome.completion.chars:
        return True
    if outcome.status is not None and outcome.status < 400:
        return True
    return left_during_work(outcome)


def left_during_work(outcome: Outcome) -> bool:
    """The client disconnected while its last upstream call was in flight (a non-stream
    answer not yet back) or answering (a stream being relayed, even with no text yet): the
    upstream did, and bills, the work, so the request is billed at least its estimated
    prompt. A client that leaves before any call, or while the gateway waits to retry a
    failed one, costs nothing."""
    if outcome.error_type != "client_disconnect" or not outcome.attempts:
        return False
    status = outcome.attempts[-1].status
    return status is None or status < 400


def cost_of(outcome: Outcome, tokens: Tokens | None, prices: PriceBook) -> Decimal | None:
    if outcome.cache_status == "HIT":
        return Decimal(0)
    if tokens is None:
        return Decimal(0) if outcome.status is not None and outcome.status >= 400 else None
    vk = outcome.virtual_key
    # A call the client left mid-way was answered by no one: priced at the provider it went to.
    provider = last_provider(outcome)
    price = prices.price(provider or "", outcome.model,
                         vk.prices if vk is not None else None)
    if price is None:
        return None
    return price.cost(tokens.prompt, tokens.completion, tokens.cached)


def price_request(outcome: Outcome, prices: PriceBook) -> Tokens | None:
    """The request's tokens, and its cost set on the context (`cost_usd`; `priced` says it
    was looked for): done as the request finishes, for the recorders after the usage log
    (metrics, limits), while the row itself is built a little later (setup.UsageLog)."""
    tokens = tokens_of(outcome)
    outcome.cost_usd, outcome.priced = cost_of(outcome, tokens, prices), True
    return tokens


def row_values(outcome: Outcome, tokens: Tokens | None, log_bodies: bool) -> list[Any]:
    """The row of a priced request (price_request gave `tokens`): its values in table order
    (codec.COLUMNS), as codec.encode_values takes them. A list, not a dict by column name:
    the dict and the reordering cost a fifth of the row."""
    latency = outcome.finished_ms if outcome.finished_ms is not None else outcome.elapsed_ms()
    upstream = outcome.upstream_ms
    principal = outcome.principal
    request = outcome.request
    bodies = (_truncate(_scrub(request.body) if request.body else None),
              _truncate(outcome.response_body)) if log_bodies else (None, None)
    return [  # in the order of the columns, named on the right where they differ
        request.request_id, request.created_at, request.trace_id,
        principal.id if principal else None,  # api_key_id
        outcome.virtual_key_id, outcome.config_id,
        f"proxy:{request.path}" if request.endpoint is Endpoint.PROXY else request.endpoint.value,
        outcome.answered_by or request.provider, outcome.model,  # provider
        request.stream, outcome.status, outcome.error_type,  # status_code
        (outcome.error_message or "")[:_MESSAGE_LIMIT] or None,
        # prompt, completion, cached and total tokens, tokens_estimated
        *((tokens.prompt, tokens.completion, tokens.cached, tokens.total, tokens.estimated)
          if tokens else _NO_TOKENS),
        outcome.cost_usd,
        # Times as measured: rounding five floats was a tenth of the row's cost.
        latency, outcome.ttfb_ms, upstream,  # latency_ms, ttfb_ms, upstream_latency_ms
        max(latency - upstream - outcome.backoff_ms, 0.0),  # gateway_overhead_ms
        outcome.retry_count, outcome.option_path, outcome.cache_status,  # last_used_option
        outcome.request.metadata or None,
        [attempt.as_dict() for attempt in outcome.attempts] or None,
        outcome.prompt_id, outcome.prompt_version,
        *bodies,  # request_body, response_body
        *verdicts.columns(outcome.hooks_before, outcome.hooks_after),  # hook_results, ...
        request.dialect,
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


def last_provider(outcome: Outcome) -> str | None:
    """The provider that answered; else the one last tried; else the one the client named."""
    return outcome.answered_by or (outcome.attempts[-1].provider if outcome.attempts
                                   else None) or outcome.request.provider

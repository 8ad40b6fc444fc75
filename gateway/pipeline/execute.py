"""Execute a routing plan: walk the strategy tree, retrying at leaves and falling back.

Every upstream failure arrives here as a GatewayError carrying a status (a timeout is 408,
an unreachable upstream 502), so retry and fallback decide on statuses alone, for streams
(which commit on their first chunk) as for plain responses.
"""

from __future__ import annotations

import asyncio
import random

from gateway.cache import cached_attempt
from gateway.contracts.plan import Branch, Leaf, Node
from gateway.contracts.request import RequestContext
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    RequestTimeout,
    UpstreamMalformed,
    UpstreamStatus,
    UpstreamUnreachable,
)
from gateway.limits import admit_virtual_key
from gateway.pipeline.attempt import Answer, run_attempt
from gateway.routing.conditional import matches
from gateway.routing.retry import retry_delay
from gateway.routing.shape import MAX_UPSTREAM_ATTEMPTS
from gateway.security.access import ensure_model_allowed
from gateway.services import Services

# Failures that come from a target, as opposed to the request itself being refused.
_TARGET_FAILURES = (UpstreamStatus, UpstreamUnreachable, UpstreamMalformed, RequestTimeout)
# Fallback also moves past a target whose virtual key is over its limits (the caller's own
# API-key limits are checked before any target runs, so they never reach here).
_FALLBACK_FAILURES = (*_TARGET_FAILURES, RateLimited)


async def execute(services: Services, ctx: RequestContext, plan: Node) -> Answer:
    try:
        return await _run(services, ctx, plan)
    except _TARGET_FAILURES as exc:
        if len(ctx.attempts) > 1:
            exc.extra["attempts"] = [attempt.as_dict() for attempt in ctx.attempts]
        raise


async def _run(services: Services, ctx: RequestContext, node: Node) -> Answer:
    if isinstance(node, Leaf):
        ensure_model_allowed(ctx, node)  # before the cache: a hit must not dodge the rule
        # The cache wraps the retrying leaf: a hit costs no attempt at all.
        return await cached_attempt(services, ctx, node, _run_leaf)
    if node.mode == "fallback":
        return await _fallback(services, ctx, node)
    if node.mode == "loadbalance":
        return await _run(services, ctx, pick_weighted(node, services, random.random()))
    if node.mode == "conditional":
        return await _run(services, ctx, _conditional_choice(ctx, node))
    return await _run(services, ctx, node.children[0])


async def _fallback(services: Services, ctx: RequestContext, node: Branch) -> Answer:
    children = _healthy_first(services, node.children)
    for position, child in enumerate(children):
        try:
            return await _run(services, ctx, child)
        except _FALLBACK_FAILURES as exc:
            last = position == len(children) - 1
            if last or not _falls_back(exc, node.on_status_codes):
                raise
            _ensure_attempts_left(ctx, exc)
    raise AssertionError("unreachable: a branch has at least one child")


def _falls_back(exc: GatewayError, on_status_codes: frozenset[int] | None) -> bool:
    if on_status_codes is None or isinstance(exc, UpstreamUnreachable):
        return True
    return exc.status in on_status_codes


def _healthy_first(services: Services, children: tuple[Node, ...]) -> tuple[Node, ...]:
    """Skip children whose circuit is open, unless every one of them is cooling down."""
    healthy = tuple(c for c in children if not _is_open(services, c))
    return healthy or children


def _is_open(services: Services, node: Node) -> bool:
    if isinstance(node, Leaf):
        return services.breakers.is_open(node)
    return all(_is_open(services, child) for child in node.children)


def pick_weighted(node: Branch, services: Services | None, roll: float) -> Node:
    """Weighted choice over children with weight > 0 whose circuit is closed; roll in [0, 1)."""
    candidates = [(c, w) for c, w in zip(node.children, node.weights, strict=True) if w > 0]
    if services is not None:
        healthy = [(c, w) for c, w in candidates if not _is_open(services, c)]
        candidates = healthy or candidates
    point = roll * sum(w for _, w in candidates)
    for child, weight in candidates:
        if point < weight:
            return child
        point -= weight
    return candidates[-1][0]


def _conditional_choice(ctx: RequestContext, node: Branch) -> Node:
    context = {"metadata": ctx.metadata, "params": ctx.body or {},
               "url": {"pathname": f"/v1/{ctx.path}"}}
    for rule in node.conditions:
        if matches(rule.query, context):
            return node.children[rule.then]
    if node.default is not None:
        return node.children[node.default]
    raise InvalidRequest(f"{node.path}: no condition matched and the strategy has no default",
                         param="x-portkey-config", code="no_route")


async def _run_leaf(services: Services, ctx: RequestContext, leaf: Leaf) -> Answer:
    """Attempt the leaf, retrying per its policy; sets the retry count the client sees."""
    policy = leaf.retry
    budget = services.settings.retry_budget_ms / 1000
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    retries = 0
    ctx.option_path = leaf.path  # on failure too: the last target tried
    await admit_virtual_key(services, ctx, leaf)
    while True:
        ctx.retry_count = retries
        try:
            answer = await run_attempt(services, ctx, leaf)
        except _TARGET_FAILURES as exc:
            services.breakers.record(leaf, exc.status)
            if retries >= policy.attempts or not _retryable(exc, leaf):
                if policy.attempts and retries >= policy.attempts and _retryable(exc, leaf):
                    ctx.retry_count = -1  # retries ran out on a retryable failure
                raise
            _ensure_attempts_left(ctx, exc)
            delay = retry_delay(services.settings, policy, exc, retries)
            if delay is None or loop.time() + delay > deadline:
                ctx.retry_count = -1
                raise
            await asyncio.sleep(delay)
            ctx.backoff_ms += delay * 1000
            retries += 1
            continue
        services.breakers.record(leaf, None)
        ctx.answered_by = leaf.provider
        return answer


def _ensure_attempts_left(ctx: RequestContext, exc: GatewayError) -> None:
    """Stop with the last error once the request has made MAX_UPSTREAM_ATTEMPTS calls,
    retries and fallbacks counted together; the message (and so the log row) says so."""
    if len(ctx.attempts) >= MAX_UPSTREAM_ATTEMPTS:
        exc.message += (f" (gave up: the request made its {MAX_UPSTREAM_ATTEMPTS} upstream "
                        "attempts, retries and fallbacks counted together)")
        exc.extra["attempts_exhausted"] = True
        raise exc


def _retryable(exc: GatewayError, leaf: Leaf) -> bool:
    policy = leaf.retry
    if not policy.explicit_codes and isinstance(
            exc, UpstreamUnreachable | RequestTimeout | UpstreamMalformed):
        return True
    return exc.status in policy.on_status_codes

"""Execute: walk the plan's strategy tree, retrying at leaves and falling back.

For each leaf tried: its virtual key's limits, the model allow-lists, its prepared body, the
input hook point, the cache, then attempts (`attempt.run_attempt`) with the leaf's retry
policy; the output hook point runs on the answer.

Every upstream failure arrives here as a GatewayError carrying a status (a timeout is 408,
an unreachable upstream 502), so retry and fallback decide on statuses alone, for streams
(which commit on their first chunk) as for plain responses.
"""

from __future__ import annotations

import asyncio
import random

from gateway.contracts.answer import Answer
from gateway.contracts.outcome import Outcome
from gateway.contracts.plan import Branch, Leaf, Node
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    RequestTimeout,
    UpstreamMalformed,
    UpstreamStatus,
    UpstreamUnreachable,
)
from gateway.guardrails.status import HooksFailed
from gateway.limits import virtual_key_scope
from gateway.pipeline import hooks
from gateway.pipeline.attempt import run_attempt
from gateway.pipeline.cached import cached_attempt
from gateway.pipeline.prepare import Prepared, prepare
from gateway.pipeline.services import Services
from gateway.routing.breaker import Breakers
from gateway.routing.conditional import matches
from gateway.routing.retry import retry_delay
from gateway.routing.shape import MAX_UPSTREAM_ATTEMPTS
from gateway.security.access import ensure_model_allowed
from providers import REGISTRY

# Failures that come from a target, as opposed to the request itself being refused.
_TARGET_FAILURES = (UpstreamStatus, UpstreamUnreachable, UpstreamMalformed, RequestTimeout)
# Fallback also moves past a target whose virtual key is over its limits (the caller's own
# API-key limits are checked before any target runs, so they never reach here).
# And past a target whose guardrails denied the request or its answer (446), as Portkey does.
_FALLBACK_FAILURES = (*_TARGET_FAILURES, RateLimited, HooksFailed)


async def execute(services: Services, outcome: Outcome, plan: Node) -> Answer:
    try:
        return await _run(services, outcome, plan)
    except _TARGET_FAILURES as exc:
        if len(outcome.attempts) > 1:
            exc.extra["attempts"] = [attempt.as_dict() for attempt in outcome.attempts]
        raise


async def _run(services: Services, outcome: Outcome, node: Node) -> Answer:
    if isinstance(node, Leaf):
        return await _run_target(services, outcome, node)
    if node.mode == "fallback":
        return await _fallback(services, outcome, node)
    if node.mode == "loadbalance":
        return await _run(services, outcome,
                          pick_weighted(node, services.breakers, random.random()))
    if node.mode == "conditional":
        return await _run(services, outcome, _conditional_choice(outcome, node))
    return await _run(services, outcome, node.children[0])


async def _run_target(services: Services, outcome: Outcome, leaf: Leaf) -> Answer:
    request = outcome.request
    outcome.option_path = leaf.path  # on failure too: the last target tried
    # Before the cache: a hit must not dodge the model rule, nor a virtual key's limits.
    ensure_model_allowed(outcome.principal, request, leaf)
    if services.limiter is not None and leaf.virtual_key is not None:
        # A key this request already holds is not counted again: retries count once.
        await services.limiter.admit(outcome, [virtual_key_scope(leaf.virtual_key)])
    guards = hooks.hooks_of(outcome, leaf)
    prepared = prepare(request, leaf, REGISTRY[leaf.provider], guarded=bool(guards),
                       limits=services.output_limits)
    prepared = await hooks.before_request(services.guardrails, guards, outcome, leaf, prepared,
                                          logged=services.usage is not None)
    outcome.clamped_output = prepared.clamped_output  # this target's, not an earlier one's
    # The cache wraps the retrying leaf: a hit costs no attempt at all.
    answer = await cached_attempt(services, outcome, leaf, prepared,
                                  lambda: _attempts(services, outcome, leaf, prepared))
    return await hooks.after_answer(services.guardrails, guards, outcome, leaf, prepared,
                                    answer)


async def _fallback(services: Services, outcome: Outcome, node: Branch) -> Answer:
    children = _healthy_first(services.breakers, node.children)
    for position, child in enumerate(children):
        try:
            return await _run(services, outcome, child)
        except _FALLBACK_FAILURES as exc:
            last = position == len(children) - 1
            if last or not _falls_back(exc, node.on_status_codes):
                raise
            _ensure_attempts_left(outcome, exc)
    raise AssertionError("unreachable: a branch has at least one child")


def _falls_back(exc: GatewayError, on_status_codes: frozenset[int] | None) -> bool:
    if on_status_codes is None or isinstance(exc, UpstreamUnreachable):
        return True
    return exc.status in on_status_codes


def _healthy_first(breakers: Breakers, children: tuple[Node, ...]) -> tuple[Node, ...]:
    """Skip children whose circuit is open, unless every one of them is cooling down."""
    healthy = tuple(c for c in children if not _is_open(breakers, c))
    return healthy or children


def _is_open(breakers: Breakers, node: Node) -> bool:
    if isinstance(node, Leaf):
        return breakers.is_open(node)
    return all(_is_open(breakers, child) for child in node.children)


def pick_weighted(node: Branch, breakers: Breakers | None, roll: float) -> Node:
    """Weighted choice over children with weight > 0 whose circuit is closed; roll in [0, 1)."""
    candidates = [(c, w) for c, w in zip(node.children, node.weights, strict=True) if w > 0]
    if breakers is not None:
        healthy = [(c, w) for c, w in candidates if not _is_open(breakers, c)]
        candidates = healthy or candidates
    point = roll * sum(w for _, w in candidates)
    for child, weight in candidates:
        if point < weight:
            return child
        point -= weight
    return candidates[-1][0]


def _conditional_choice(outcome: Outcome, node: Branch) -> Node:
    request = outcome.request
    context = {"metadata": request.metadata, "params": request.body or {},
               "url": {"pathname": f"/v1/{request.path}"}}
    for rule in node.conditions:
        if matches(rule.query, context):
            return node.children[rule.then]
    if node.default is not None:
        return node.children[node.default]
    raise InvalidRequest(f"{node.path}: no condition matched and the strategy has no default",
                         param="x-portkey-config", code="no_route")


async def _attempts(services: Services, outcome: Outcome, leaf: Leaf,
                    prepared: Prepared) -> Answer:
    """Attempt the leaf, retrying per its policy; sets the retry count the client sees."""
    policy = leaf.retry
    budget = services.settings.retry_budget_ms / 1000
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    retries = 0
    while True:
        outcome.retry_count = retries
        try:
            answer = await run_attempt(services, outcome, leaf, prepared)
        except _TARGET_FAILURES as exc:
            services.breakers.record(leaf, exc.status)
            if retries >= policy.attempts or not _retryable(exc, leaf):
                if policy.attempts and retries >= policy.attempts and _retryable(exc, leaf):
                    outcome.retry_count = -1  # retries ran out on a retryable failure
                raise
            _ensure_attempts_left(outcome, exc)
            delay = retry_delay(services.settings, policy, exc, retries)
            if delay is None or loop.time() + delay > deadline:
                outcome.retry_count = -1
                raise
            await asyncio.sleep(delay)
            outcome.backoff_ms += delay * 1000
            retries += 1
            continue
        services.breakers.record(leaf, None)
        outcome.answered_by = leaf.provider
        return answer


def _ensure_attempts_left(outcome: Outcome, exc: GatewayError) -> None:
    """Stop with the last error once the request has made MAX_UPSTREAM_ATTEMPTS calls,
    retries and fallbacks counted together; the message (and so the log row) says so."""
    if len(outcome.attempts) >= MAX_UPSTREAM_ATTEMPTS:
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

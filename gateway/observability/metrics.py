"""Prometheus metrics: a recorder fed every finished request, and `GET /metrics`.

Counters and histograms are filled from each finished request's `Outcome`. Numbers other
parts keep on their own objects (circuit-breaker opens, Redis failures, the usage queue's
depth and spooled rows) are read from them (`Sources`) when scraped, and every few seconds
so that each worker of a multi-process server reports its own share; anything absent reads
as 0. Guardrail checks are counted the same way: in a plain dict per request, into their
counter when scraped, every few seconds, and when the worker stops.

With several workers `serve` sets PROMETHEUS_MULTIPROC_DIR before they start: every process
writes its samples there and a scrape of any worker sums them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.cache.stores import ResponseCache
from gateway.contracts.outcome import Outcome
from gateway.errors import NotFound
from gateway.guardrails.hooks import Phase
from gateway.guardrails.registry import CHECKS
from gateway.guardrails.results import HookResult
from gateway.limits import Limiter
from gateway.routing.breaker import Breakers
from gateway.settings import Settings
from gateway.usage.row import last_provider
from gateway.usage.setup import UsageLog
from gateway.usage.spool import Spool

log = logging.getLogger("gateway.metrics")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
_MODEL_LABEL_MAX = 100  # a client picks the model name: keep one label value bounded
REFRESH_INTERVAL_S = 5.0
_CHECK_VERDICTS = ("pass", "fail", "error")  # a tally's order (Metrics._count_checks)


@dataclass(frozen=True, slots=True)
class Sources:
    """The objects whose own counts the metrics report (None: that part is off)."""

    breakers: Breakers
    cache: ResponseCache | None = None
    limiter: Limiter | None = None
    usage: UsageLog | None = None


class Metrics:
    """The collectors, in a registry of their own (one per app, so tests can make many)."""

    def __init__(self, settings: Settings, sources: Sources) -> None:
        self.sources = sources
        self.multiproc_dir = settings.prometheus_multiproc_dir
        self.spool_dir = settings.spool_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self._seen: dict[str, float] = {}  # last totals read from other objects, for deltas
        r = self.registry
        req = ("provider", "model")
        self.requests = Counter("gateway_requests", "Finished requests.",
                                (*req, "status"), registry=r)
        self.latency = Histogram("gateway_request_duration_seconds",
                                 "Total time from request received to last byte sent.", req,
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.ttfb = Histogram("gateway_time_to_first_byte_seconds",
                              "Time from request received to the first streamed byte.", req,
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram("gateway_overhead_seconds",
                                  "Time the gateway itself added to single-attempt requests.",
                                  ("provider",), buckets=_OVERHEAD_BUCKETS, registry=r)
        self.tokens = Counter("gateway_tokens", "Tokens reported by upstreams.",
                              (*req, "type"), registry=r)
        self.cost = Counter("gateway_cost_usd", "Cost of requests in US dollars.", req,
                            registry=r)
        self.unpriced = Counter("gateway_unpriced_requests",
                                "Requests with tokens but no known price (cost logged as null).",
                                req, registry=r)
        self.retries = Counter("gateway_retries", "Repeated attempts on the same target.",
                               ("provider",), registry=r)
        self.fallbacks = Counter("gateway_fallbacks",
                                 "Requests that tried more than one target.", ("provider",),
                                 registry=r)
        self.breaker_opens = Counter("gateway_circuit_breaker_opens",
                                     "Times a target's circuit opened.", registry=r)
        self.cache_hits = Counter("gateway_cache_hits", "Responses served from the cache.",
                                  registry=r)
        self.cache_misses = Counter("gateway_cache_misses", "Cache lookups that missed.",
                                    registry=r)
        self.limit_rejections = Counter("gateway_limit_rejections",
                                        "Requests refused by a rate, budget or concurrency limit.",
                                        ("code",), registry=r)
        self.redis_failures = Counter("gateway_redis_failures",
                                      "Redis calls that failed (the gateway carried on).",
                                      registry=r)
        self.queue_depth = Gauge("gateway_usage_queue_depth",
                                 "Usage records waiting to be written.", registry=r,
                                 multiprocess_mode="livesum")
        self.spooled_rows = Gauge("gateway_usage_spooled_rows",
                                  "Usage records spooled to disk while the database is down.",
                                  registry=r, multiprocess_mode="max")
        self.guardrail_checks = Counter(
            "gateway_guardrail_checks",
            "Guardrail checks run on the target last tried (async hooks' when they "
            "finish), by check id and verdict "
            "(pass, fail, error).", ("check", "verdict"), registry=r)
        # Checks run, by (check, verdict): counted here per request, in a dict, and added to
        # the counter by `refresh` (on every scrape, and every few seconds), as the numbers
        # kept on other objects are. prometheus_client's counter takes a lock and five calls
        # an increment: 17,000 instructions a request with three checks, under callgrind.
        # By check id, a [pass, fail, error] tally (a list item to add to: no key to make
        # and hash per check); ids the registry does not know share the tally of "other".
        self._checks_run: dict[str, list[int]] = {}
        self._check_tallies: dict[str, list[int]] = {}  # by label: at most len(CHECKS) + 1

    def record(self, outcome: Outcome) -> None:
        """The recorder: count one finished request. Never raises into the request path."""
        try:
            self._record(outcome)
        except Exception:  # a metrics bug must not break a response
            log.exception("metrics: could not record request %s", outcome.request.request_id)

    def _record(self, outcome: Outcome) -> None:
        provider, model = request_labels(outcome)
        self.requests.labels(provider, model, str(outcome.status or 0)).inc()
        self.latency.labels(provider, model).observe(outcome.elapsed_ms() / 1000)
        if outcome.ttfb_ms is not None:
            self.ttfb.labels(provider, model).observe(outcome.ttfb_ms / 1000)
        self._count_usage(outcome, provider, model)
        paths = [attempt.path for attempt in outcome.attempts]
        retries = len(paths) - len(set(paths))
        if retries:
            self.retries.labels(provider).inc(retries)
        if len(set(paths)) > 1:
            self.fallbacks.labels(provider).inc()
        if len(outcome.attempts) == 1 and not outcome.request.stream:
            # Stream attempts end at the first chunk, so only plain answers measure this.
            overhead = outcome.elapsed_ms() - outcome.attempts[0].latency_ms
            self.overhead.labels(provider).observe(max(overhead, 0.0) / 1000)
        cache = (outcome.cache_status or "").lower()
        if "hit" in cache:
            self.cache_hits.inc()
        elif "miss" in cache:
            self.cache_misses.inc()
        for phase in (outcome.hooks_before, outcome.hooks_after):
            if phase is not None:
                self._count_checks(phase.hooks)

    def count_late_hook(self, phase: Phase, result: HookResult) -> None:
        """The runner's `on_async`: an async hook's checks, counted when it finishes (after
        its request was recorded). Never raises into the runner's background task."""
        try:
            self._count_checks((result,))
        except Exception:  # a metrics bug must not break the hook's task
            log.exception("metrics: could not count async hook results (%s)", phase)

    def _count_checks(self, hooks: Sequence[HookResult]) -> None:
        counts = self._checks_run
        for hook in hooks:
            for check in hook.checks:  # a skipped hook has none
                try:
                    tally = counts[check.id]
                except KeyError:  # (first seen: a try costs nothing until it raises)
                    tally = self._tally(check.id)
                # An error counts as one whether it failed the check or not (fail-open).
                if check.error is not None:
                    tally[2] += 1
                elif check.verdict:
                    tally[0] += 1
                else:
                    tally[1] += 1

    def _tally(self, check_id: str) -> list[int]:
        # Ids are the built-ins' (configs naming others are refused); bounded anyway.
        label = check_id if check_id in CHECKS else "other"
        tally = self._check_tallies.setdefault(label, [0, 0, 0])
        if len(self._checks_run) < 4 * len(CHECKS):
            self._checks_run[check_id] = tally
        return tally

    def _count_usage(self, outcome: Outcome, provider: str, model: str) -> None:
        usage = outcome.usage if isinstance(outcome.usage, dict) else {}
        for kind in ("prompt", "completion"):
            count = usage.get(f"{kind}_tokens")
            if isinstance(count, int) and count > 0:
                self.tokens.labels(provider, model, kind).inc(count)
        cost = outcome.cost_usd
        if isinstance(cost, int | float | Decimal) and cost > 0:
            self.cost.labels(provider, model).inc(float(cost))
        elif cost is None and outcome.priced and usage \
                and (outcome.status or 0) < 400:
            # Tokens with no known price (cost logged null). Only the usage log prices a
            # request: with it off, cost is None for every request and means nothing.
            self.unpriced.labels(provider, model).inc()

    def refresh(self) -> None:
        """Bring counters and gauges kept on other objects up to date."""
        self._add_checks_run()  # first: a source that fails to read must not hold these back
        sources = self.sources
        self._advance(self.breaker_opens, "breaker_opens", _number(sources.breakers, "opens"))
        cache, limiter = sources.cache, sources.limiter
        self._advance(self.redis_failures, "redis_failures", _number(cache, "unavailable") + sum(
            _number(limiter, name) for name in ("failed_open", "failed_closed", "settle_failures")))
        rejected = dict(getattr(limiter, "rejected", None) or {})
        if _number(limiter, "failed_closed"):
            rejected["limits_unavailable"] = _number(limiter, "failed_closed")
        for code, total in rejected.items():
            self._advance(self.limit_rejections.labels(code), f"rejected:{code}", float(total))
        usage = sources.usage
        self.queue_depth.set(usage.depth if usage is not None else 0)
        # Without a running usage log (logging off), rows left by earlier runs still wait.
        spool = usage.spool if usage is not None else Spool(self.spool_dir)
        self.spooled_rows.set(spool.pending_rows())

    def _add_checks_run(self) -> None:
        for check, tally in list(self._check_tallies.items()):
            for verdict, total in zip(_CHECK_VERDICTS, tally, strict=True):
                if total:
                    self._advance(self.guardrail_checks.labels(check, verdict),
                                  f"check:{check}:{verdict}", float(total))

    def _advance(self, counter: Any, key: str, total: float) -> None:
        delta = total - self._seen.get(key, 0.0)
        if delta > 0:
            counter.inc(delta)
        self._seen[key] = total

    async def refresh_loop(self) -> None:
        """Background task: keep this worker's share current between scrapes."""
        while True:
            await asyncio.sleep(REFRESH_INTERVAL_S)
            try:
                self.refresh()
            except Exception:  # top of a background loop: log and carry on
                log.exception("metrics: refresh failed")

    def exposition(self) -> bytes:
        if self.multiproc_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiproc_dir))
        return generate_latest(registry)

    def close(self) -> None:
        """On worker exit: the last checks counted in, then drop this process's live gauges
        from the shared directory (its counters stay there)."""
        self._add_checks_run()
        if self.multiproc_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self.multiproc_dir))


def request_labels(outcome: Outcome) -> tuple[str, str]:
    provider = last_provider(outcome) or "none"
    body = outcome.request.body
    model = body.get("model") if isinstance(body, dict) else None
    return provider, model[:_MODEL_LABEL_MAX] if isinstance(model, str) else ""


def _number(obj: Any, *names: str) -> float:
    """The first of `names` on `obj` that is a number (or a method returning one), else 0."""
    for name in names:
        value = getattr(obj, name, None)
        if callable(value):
            with contextlib.suppress(TypeError):
                value = value()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return 0.0


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics | None = request.app.state.services.metrics
    if metrics is None:
        raise NotFound("metrics are turned off (GATEWAY_METRICS_ENABLED=false)")
    metrics.refresh()
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics_endpoint, methods=["GET"])]

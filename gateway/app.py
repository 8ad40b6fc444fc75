"""Wiring: build the Starlette app from settings. No logic lives here.

The lifespan opens each long-lived part in order (upstream client, key store, usage log,
Redis with the cache and the limiter, metrics), builds the immutable `Services` last, and
closes the parts in reverse order at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from gateway import admin
from gateway.cache.stores import ResponseCache
from gateway.console import Console
from gateway.console import routes as console_routes
from gateway.db.redis_link import RedisLink
from gateway.errors import GatewayError, NotFound
from gateway.guardrails.runner import GuardrailRunner
from gateway.limits import Limiter
from gateway.net.hostguard import HostGuard
from gateway.net.upstream import create_client
from gateway.observability import health
from gateway.observability import metrics as metrics_routes
from gateway.observability.metrics import Metrics, Sources
from gateway.observability.otel import Telemetry, TraceMiddleware
from gateway.pipeline import routes as inference
from gateway.pipeline.output_limits import OutputLimits, load_limits
from gateway.pipeline.record import Recorder, Recording
from gateway.pipeline.services import Services
from gateway.prompts import routes as prompts
from gateway.routing.breaker import Breakers
from gateway.routing.config import ConfigCache
from gateway.security.service_accounts import ServiceAccountTokens
from gateway.server.error_response import error_response
from gateway.server.heap import freeze_startup_objects, unfreeze
from gateway.server.replica_sync import start_replica_sync
from gateway.settings import Settings
from gateway.store.responses import ResponseStore
from gateway.store.setup import open_key_store
from gateway.usage.setup import open_usage_log

log = logging.getLogger("gateway")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    telemetry = Telemetry(settings) if settings.otlp_endpoint else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as parts:
            app.state.services = await open_services(settings, telemetry, parts)
            app.state.console = Console.from_settings(settings)
            freeze_startup_objects(settings.gc_young_threshold)
            parts.callback(unfreeze)
            # uvicorn leaves this only after it stopped accepting and in-flight responses
            # ended (or GATEWAY_SHUTDOWN_GRACE_S ran out); the parts then close in reverse.
            yield

    async def on_gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return error_response(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        error = NotFound(f"no route for {request.method} {request.url.path}")
        error.status = status
        return error_response(request, error)

    middleware = [Middleware(TraceMiddleware, telemetry=telemetry)] if telemetry else []
    app = Starlette(routes=[*inference.routes, *health.routes, *metrics_routes.routes,
                            *admin.routes, *console_routes, *prompts.routes,
                            *inference.passthrough_routes],
                    lifespan=lifespan, middleware=middleware,
                    exception_handlers={GatewayError: on_gateway_error, 404: on_http_error,
                                        405: on_http_error})
    app.state.settings = settings
    return app


async def open_services(settings: Settings, telemetry: Telemetry | None,
                        parts: AsyncExitStack) -> Services:
    """Open every part, registering its close on `parts`; the Services last."""
    if telemetry is not None:  # exports its last spans after everything else has closed
        parts.push_async_callback(asyncio.to_thread, telemetry.shutdown)
    http = create_client(settings)
    parts.push_async_callback(http.aclose)
    breakers = Breakers(settings.circuit_failure_threshold, settings.circuit_window_s,
                        settings.circuit_cooldown_s)
    db, key_store, resolver = await open_key_store(settings)
    parts.push_async_callback(db.close)
    responses = ResponseStore(db, settings.responses_retention_days)
    parts.push_async_callback(responses.close)  # its writes in flight, before the database
    usage = await open_usage_log(settings, db)
    if usage is not None:
        parts.push_async_callback(usage.close)
    redis = RedisLink.from_settings(settings)
    if redis is not None:
        parts.push_async_callback(redis.close)
    cache = ResponseCache.from_settings(settings, redis)
    limiter = Limiter.from_settings(settings, redis)
    parts.push_async_callback(limiter.drain)  # pending settlements, before Redis closes
    if redis is not None:  # key-store writes and (opt-in) circuits, told to every replica
        sync = start_replica_sync(settings, redis, breakers, key_store, resolver)
        parts.push_async_callback(sync.stop)
    elif settings.circuit_shared:  # said, but impossible: say so rather than share nothing
        log.warning("GATEWAY_CIRCUIT_SHARED is on but REDIS_URL is not set: each process "
                    "keeps its own circuit breakers")
    metrics = None
    recorders: list[Recorder] = [usage.record] if usage else []  # first: the others read cost
    if settings.metrics_enabled:
        metrics = Metrics(settings, Sources(breakers, cache, limiter, usage))
        parts.callback(metrics.close)
        refresher = asyncio.create_task(metrics.refresh_loop(), name="metrics-refresh")
        parts.push_async_callback(_cancel, refresher)
        recorders.append(metrics.record)
    recorders.append(limiter.finished)
    recording = Recording(recorders)
    parts.push_async_callback(recording.drain)  # requests being counted, before the rest
    guard = HostGuard(settings.trusted_host_set)
    # Async hooks finish after their request was recorded: their checks are counted then.
    guardrails = GuardrailRunner(
        http, guard, on_async=None if metrics is None else metrics.count_late_hook)
    parts.push_async_callback(guardrails.aclose)  # async hooks still running, first
    return Services(settings=settings, http=http, host_guard=guard, breakers=breakers,
                    configs=ConfigCache(), resolver=resolver, tokens=ServiceAccountTokens(),
                    recording=recording, guardrails=guardrails, db=db,
                    key_store=key_store, redis=redis, cache=cache, limiter=limiter,
                    usage=usage, metrics=metrics, telemetry=telemetry, responses=responses,
                    output_limits=OutputLimits(load_limits(), settings.model_output_limits))


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

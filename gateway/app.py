"""Wiring: build the Starlette app from settings. No logic lives here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from gateway import admin
from gateway.console import attach as attach_console
from gateway.console import routes as console_routes
from gateway.errors import GatewayError, NotFound
from gateway.net.hostguard import HostGuard
from gateway.net.upstream import create_client
from gateway.observability import health, metrics
from gateway.observability import lifecycle as observability
from gateway.observability.otel import Telemetry, TraceMiddleware
from gateway.pipeline import routes as inference
from gateway.prompts import routes as prompts
from gateway.routing.breaker import Breakers
from gateway.server import cache_and_limits
from gateway.server.error_response import error_response
from gateway.server.heap import freeze_startup_objects, unfreeze
from gateway.services import Services
from gateway.settings import Settings
from gateway.store import setup as key_store
from gateway.usage import setup as usage_log

log = logging.getLogger("gateway")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    telemetry = Telemetry(settings) if settings.otlp_endpoint else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        http = create_client(settings)
        breakers = Breakers(settings.circuit_failure_threshold, settings.circuit_window_s,
                            settings.circuit_cooldown_s)
        app.state.services = Services(settings=settings, http=http, breakers=breakers,
                                      host_guard=HostGuard(settings.trusted_host_set))
        await key_store.start(app.state.services)
        await usage_log.start(app.state.services)
        await observability.start(app.state.services, telemetry)
        try:
            cache_and_limits.attach(app.state.services)
            attach_console(app.state.services)
            freeze_startup_objects()
            yield
        finally:
            # uvicorn runs this only after it stopped accepting and in-flight responses ended
            # (or GATEWAY_SHUTDOWN_GRACE_S ran out); close the usage writer first, then these.
            unfreeze()
            await app.state.services.drain_records()  # requests whose tokens are being counted
            await usage_log.stop(app.state.services)
            await cache_and_limits.detach(app.state.services)
            await observability.stop(app.state.services)
            await key_store.stop(app.state.services)
            await http.aclose()

    async def on_gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return error_response(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        error = NotFound(f"no route for {request.method} {request.url.path}")
        error.status = status
        return error_response(request, error)

    middleware = [Middleware(TraceMiddleware, telemetry=telemetry)] if telemetry else []
    app = Starlette(routes=[*inference.routes, *health.routes, *metrics.routes, *admin.routes,
                            *console_routes, *prompts.routes, *inference.passthrough_routes],
                    lifespan=lifespan, middleware=middleware,
                    exception_handlers={GatewayError: on_gateway_error, 404: on_http_error,
                                        405: on_http_error})
    app.state.settings = settings
    return app

"""Wiring: build the Starlette app from settings. No logic lives here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from gateway import health, inference
from gateway.cache import ResponseCache
from gateway.errors import GatewayError, NotFound
from gateway.hostguard import HostGuard
from gateway.limits import Limiter
from gateway.redis_link import RedisLink
from gateway.rendering import error_response
from gateway.services import Services
from gateway.settings import Settings
from gateway.upstream import create_client

log = logging.getLogger("gateway")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        http = create_client(settings)
        services = app.state.services = Services(
            settings=settings, http=http, host_guard=HostGuard(settings.trusted_host_set))
        services.redis = RedisLink.from_settings(settings)
        services.cache = ResponseCache.from_settings(settings, services.redis)
        services.limiter = Limiter.from_settings(settings, services.redis)
        services.recorders.append(services.limiter.finished)
        try:
            yield
        finally:
            await services.limiter.drain()
            if services.redis is not None:
                await services.redis.close()
            await http.aclose()

    async def on_gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return error_response(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        error = NotFound(f"no route for {request.method} {request.url.path}")
        error.status = status
        return error_response(request, error)

    app = Starlette(routes=[*health.routes, *inference.routes], lifespan=lifespan,
                    exception_handlers={GatewayError: on_gateway_error, 404: on_http_error,
                                        405: on_http_error})
    app.state.settings = settings
    return app

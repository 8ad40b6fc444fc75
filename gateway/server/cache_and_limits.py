"""Lifespan wiring for the response cache and the limiter, and the Redis link they share."""

from __future__ import annotations

from gateway.cache import ResponseCache
from gateway.db.redis_link import RedisLink
from gateway.limits import Limiter
from gateway.services import Services


def attach(services: Services) -> None:
    """Create both on `services`; the limiter settles each finished request as a recorder."""
    settings = services.settings
    services.redis = RedisLink.from_settings(settings)
    services.cache = ResponseCache.from_settings(settings, services.redis)
    services.limiter = Limiter.from_settings(settings, services.redis)
    services.recorders.append(services.limiter.finished)


async def detach(services: Services) -> None:
    """Let pending settlements finish, then close the Redis connections."""
    if services.limiter is not None:
        await services.limiter.drain()
    if services.redis is not None:
        await services.redis.close()

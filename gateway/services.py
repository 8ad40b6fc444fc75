"""Everything long-lived the request path uses, created once in the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.credentials import ServiceAccountTokens
from gateway.db.engine import Database
from gateway.hostguard import HostGuard
from gateway.keys.store import KeyStore
from gateway.resolve import NoKeyStore, Resolver
from gateway.routing.breaker import Breakers
from gateway.routing.config import ConfigCache
from gateway.settings import Settings
from gateway.upstream import UpstreamClient

if TYPE_CHECKING:
    from gateway.cache.stores import ResponseCache
    from gateway.limits.limiter import Limiter
    from gateway.redis_link import RedisLink
    from gateway.usage.setup import UsageLog

# Receives each finished request's context (usage logging, metrics); must not block.
Recorder = Callable[[Any], None]


@dataclass(slots=True)
class Services:
    settings: Settings
    http: UpstreamClient
    host_guard: HostGuard
    breakers: Breakers
    configs: ConfigCache = field(default_factory=ConfigCache)
    resolver: Resolver = field(default_factory=NoKeyStore)
    recorders: list[Recorder] = field(default_factory=list)
    db: Database | None = None
    key_store: KeyStore | None = None  # admin API writes; None until the lifespan opens it
    extras: dict[str, Any] = field(default_factory=dict)
    redis: RedisLink | None = None
    cache: ResponseCache | None = None
    limiter: Limiter | None = None
    tokens: ServiceAccountTokens = field(default_factory=ServiceAccountTokens)
    usage: UsageLog | None = None  # the usage log, once the database is open

    def record(self, ctx: Any) -> None:
        """Hand a finished request to every recorder, exactly once."""
        if getattr(ctx, "recorded", False):
            return
        ctx.recorded = True
        ctx.finished_ms = ctx.elapsed_ms()
        for recorder in self.recorders:
            recorder(ctx)

"""Everything long-lived the request path uses, created once in the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.contracts.identity import NoKeyStore, Resolver
from gateway.contracts.request import RequestContext
from gateway.db.engine import Database
from gateway.net.hostguard import HostGuard
from gateway.net.service_accounts import ServiceAccountTokens
from gateway.net.upstream import UpstreamClient
from gateway.routing.breaker import Breakers
from gateway.routing.config import ConfigCache
from gateway.settings import Settings
from gateway.store.key_store import KeyStore
from gateway.usage.row import needs_estimate
from gateway.usage.tokens import estimate_off_loop

if TYPE_CHECKING:
    from gateway.cache.stores import ResponseCache
    from gateway.db.redis_link import RedisLink
    from gateway.limits.limiter import Limiter
    from gateway.usage.setup import UsageLog

log = logging.getLogger("gateway")

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

    # Requests whose tokens are being counted before they are recorded.
    counting: set[asyncio.Task[None]] = field(default_factory=set)

    def record(self, ctx: Any) -> None:
        """Hand a finished request to every recorder, exactly once. A request whose tokens must
        be counted locally (no usage from the upstream) is counted in a worker thread first,
        then recorded: the response never waits for it, and the event loop never counts."""
        if getattr(ctx, "recorded", False):
            return
        ctx.recorded = True
        ctx.finished_ms = ctx.elapsed_ms()
        if isinstance(ctx, RequestContext) and needs_estimate(ctx):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # recorded outside the event loop: counted where it is
                pass
            else:
                task = loop.create_task(self._record_counted(ctx))
                self.counting.add(task)
                task.add_done_callback(self.counting.discard)
                return
        self._run_recorders(ctx)

    async def _record_counted(self, ctx: RequestContext) -> None:
        try:
            ctx.estimated_tokens = await estimate_off_loop(ctx.body, ctx.completion)
        except Exception:  # recorded without tokens rather than not at all
            log.exception("could not count the tokens of request %s", ctx.request_id)
        self._run_recorders(ctx)

    def _run_recorders(self, ctx: Any) -> None:
        for recorder in self.recorders:
            recorder(ctx)

    async def drain_records(self) -> None:
        """Wait for the requests still being counted to be recorded (shutdown: before the
        usage log and the limiter close)."""
        while self.counting:
            await asyncio.gather(*list(self.counting), return_exceptions=True)

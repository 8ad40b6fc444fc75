"""The gateway's one Redis connection, shared by the cache and the limiter, and safe to lose.

Every call goes through `RedisLink.run`. A failure (refused, reset, timed out) raises
`StoreUnavailable`, logs one warning, and pauses Redis use for `redis_retry_interval`
seconds, so a dead server costs each request nothing; the first call after the pause tries
again, and the link is back as soon as one succeeds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("gateway.redis")

T = TypeVar("T")


class StoreUnavailable(Exception):
    """Redis could not be used for this call; the caller falls back."""


class RedisLink:
    def __init__(self, client: Redis, prefix: str, retry_interval: float,
                 subscriber: Redis | None = None) -> None:
        from redis.exceptions import RedisError

        self.client = client
        # The client pub/sub subscriptions use (a pool of their own); `client` when not given.
        self.subscriber = subscriber
        self._failures = (RedisError, OSError, TimeoutError)
        self.prefix = prefix
        self.retry_interval = retry_interval
        self._paused_until = 0.0
        self.healthy = True
        # Counters for metrics: failed calls, calls skipped while paused, recoveries.
        self.errors = 0
        self.skipped = 0
        self.recoveries = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisLink | None:
        if not settings.redis_url:
            return None
        # redis-py loads only when configured. It imports the OpenTelemetry metrics SDK, which
        # the gateway installs for tracing, for a hook the gateway never enables: 2.5 MiB and
        # ~25 ms of start-up, accepted (bench/README.md, "Contained experiments").
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        url = settings.redis_url

        def connect(**pool: Any) -> Redis:
            return Redis(connection_pool=BlockingConnectionPool.from_url(
                url, socket_timeout=settings.redis_timeout,
                socket_connect_timeout=settings.redis_timeout, **pool),
                # One immediate retry replaces a pooled connection the server closed.
                retry=Retry(NoBackoff(), 1))

        # A bounded pool: a burst waits for a free connection (up to the timeout) rather
        # than opening one per concurrent call, or failing as if Redis were down.
        client = connect(max_connections=settings.redis_max_connections,
                         timeout=settings.redis_timeout)
        # The replicas' pub/sub subscription holds its connection for life: its own pool,
        # so it never takes one from the requests.
        subscriber = connect(max_connections=2, timeout=settings.redis_timeout)
        return cls(client, settings.redis_prefix, settings.redis_retry_interval, subscriber)

    async def run(self, call: Callable[[Redis], Awaitable[T]]) -> T:
        if not self.healthy and time.monotonic() < self._paused_until:
            self.skipped += 1
            raise StoreUnavailable("redis paused after a failure")
        try:
            result = await call(self.client)
        except self._failures as exc:
            self.errors += 1
            if self.healthy:
                log.warning("redis unavailable (%s): cache bypassed, limits not shared; "
                            "retrying every %ss", type(exc).__name__, self.retry_interval)
            self.healthy = False
            self._paused_until = time.monotonic() + self.retry_interval
            raise StoreUnavailable(str(exc)) from exc
        if not self.healthy:
            self.healthy = True
            self.recoveries += 1
            log.warning("redis reachable again: cache and shared limits resumed")
        return result

    async def close(self) -> None:
        await self.client.aclose()
        if self.subscriber is not None:
            await self.subscriber.aclose()

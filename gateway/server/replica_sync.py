"""What replicas tell each other over Redis pub/sub: key-store writes (always, with Redis) and
circuit-breaker state (GATEWAY_CIRCUIT_SHARED). Opened in the lifespan once the Redis link is,
and stopped before the link closes."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from gateway.contracts.identity import Resolver
from gateway.db.redis_bus import RedisBus
from gateway.db.redis_link import RedisLink
from gateway.routing.breaker import Breakers
from gateway.routing.shared_circuits import SharedCircuits
from gateway.settings import Settings
from gateway.store.broadcast import share_changes
from gateway.store.key_store import KeyStore
from gateway.store.resolver import DatabaseResolver


@dataclass(frozen=True, slots=True)
class ReplicaSync:
    bus: RedisBus
    circuits: SharedCircuits | None

    async def stop(self) -> None:
        if self.circuits is not None:
            with contextlib.suppress(TimeoutError):  # reports lost at shutdown cost nothing
                await asyncio.wait_for(self.circuits.drain(), self.bus.retry_interval + 1)
        await self.bus.stop()


def start_replica_sync(settings: Settings, link: RedisLink, breakers: Breakers,
                       key_store: KeyStore | None, resolver: Resolver) -> ReplicaSync:
    """Subscribe (in the background) and hook the breakers and the key store to the bus."""
    bus = RedisBus(link, settings.redis_retry_interval)
    circuits = SharedCircuits(breakers, link, bus) if settings.circuit_shared else None
    if key_store is not None and isinstance(resolver, DatabaseResolver):
        share_changes(key_store, resolver, bus)
    bus.start()
    return ReplicaSync(bus, circuits)

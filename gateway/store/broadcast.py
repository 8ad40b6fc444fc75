"""Admin writes reach every replica: a revoked key stops working everywhere at once.

Each replica caches key lookups for GATEWAY_KEY_CACHE_TTL seconds (gateway/store/resolver.py).
With Redis, a write through any replica's admin API publishes `changed` once it is committed,
and every replica, the writer too, drops its cache when the message arrives: a revocation
reaches the others in one pub/sub delivery (milliseconds). A replica that was not subscribed
(Redis away, reconnecting) expires its cache when it subscribes again, since it may have missed
a write; until then, and for writes made by `python -m gateway keys ...` (no Redis link), the
TTL is the bound.
"""

from __future__ import annotations

from gateway.db.redis_bus import RedisBus
from gateway.store.key_store import KeyStore
from gateway.store.resolver import DatabaseResolver

CHANNEL = "keys"


def share_changes(store: KeyStore, resolver: DatabaseResolver, bus: RedisBus) -> None:
    """Publish after each of `store`'s writes; drop `resolver`'s cache on anyone's."""
    local = store.changed

    def changed() -> None:
        local()
        bus.publish(CHANNEL, "changed")

    async def missed_some() -> None:
        resolver.expire()  # served stale, not refused, if the database is down meanwhile

    store.changed = changed
    bus.subscribe(CHANNEL, lambda _message: resolver.invalidate(), missed_some)

"""The limiter: admit a request against its API key's and virtual key's limits, and settle
its account once it is finished (release the concurrency slot, charge tokens and cost).

`admit` runs before the request goes upstream and raises `RateLimited` (429) when a limit
is reached. `finished` is a services recorder, so it runs on every end of a request: success,
error, timeout and client disconnect. It settles in a task, after every recorder has run, so
the usage recorder's `cost_usd` is there to charge.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from gateway.contracts.identity import Limits, Principal, VirtualKey
from gateway.contracts.outcome import Outcome
from gateway.db.redis_link import RedisLink, StoreUnavailable
from gateway.errors import RateLimited
from gateway.limits.checks import Check, Scope, charges_for, checks_for
from gateway.limits.counters import Counters, MemoryCounters, RedisCounters
from gateway.settings import Settings
from gateway.usage.tokens import from_usage

log = logging.getLogger("gateway.limits")

_NO_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Ticket:
    """What an admitted request holds until it finishes."""

    member: str
    scopes: tuple[Scope, ...]
    slots: tuple[str, ...]


class Limiter:
    def __init__(self, counters: Counters, prefix: str, slot_ttl: int,
                 fail_closed: bool) -> None:
        self.counters = counters
        self.prefix = prefix
        self.slot_ttl = slot_ttl
        self.fail_closed = fail_closed
        self._tasks: set[asyncio.Task[None]] = set()
        # Counters for metrics.
        self.admitted = 0
        self.rejected: dict[str, int] = {}
        self.failed_open = 0
        self.failed_closed = 0
        self.settle_failures = 0

    @classmethod
    def from_settings(cls, settings: Settings, link: RedisLink | None) -> Limiter:
        counters: Counters = RedisCounters(link) if link else MemoryCounters()
        return cls(counters, settings.redis_prefix, settings.concurrency_slot_ttl,
                   settings.limits_fail_closed)

    async def admit(self, outcome: Outcome, scopes: list[Scope]) -> None:
        """Take what the request uses under each scope it does not hold yet, or raise 429."""
        held: Ticket | None = outcome.limit_ticket
        taken = {(s.kind, s.id) for s in held.scopes} if held else set()
        scopes = [s for s in scopes if s.limits != _NO_LIMITS and (s.kind, s.id) not in taken]
        if not scopes:
            return
        now = time.time()
        checks = [c for s in scopes for c in checks_for(s, self.prefix, now, self.slot_ttl)]
        member = held.member if held else uuid.uuid4().hex
        try:
            failed, retry_after = await self.counters.admit(checks, now, member)
        except StoreUnavailable:
            if self.fail_closed:
                self.failed_closed += 1
                raise RateLimited("limits cannot be checked right now; try again shortly",
                                  code="limits_unavailable", headers={"retry-after": "1"}) from None
            self.failed_open += 1
            checks = []
        else:
            if failed is not None:
                raise self._refusal(checks[failed], retry_after)
            self.admitted += 1
        slots = tuple(c.key for c in checks if c.kind == "slot")
        if held is not None:
            scopes, slots = [*held.scopes, *scopes], held.slots + slots
        outcome.limit_ticket = Ticket(member, tuple(scopes), slots)

    def _refusal(self, check: Check, retry_after: float | None) -> RateLimited:
        self.rejected[check.code] = self.rejected.get(check.code, 0) + 1
        wait = retry_after if retry_after is not None else check.retry_after
        headers = {"retry-after": str(max(1, math.ceil(wait)))} if wait is not None else {}
        return RateLimited(check.label, code=check.code, headers=headers)

    def finished(self, outcome: Outcome) -> None:
        """Recorder: settle the request's ticket once the other recorders have run."""
        ticket = outcome.limit_ticket
        if ticket is None:
            return
        outcome.limit_ticket = None
        task = asyncio.get_running_loop().create_task(self._settle(ticket, outcome))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, ticket: Ticket, outcome: Outcome) -> None:
        hit = outcome.cache_status == "HIT"
        # The upstream's count, else the local estimate (usage missing, or a client that left
        # mid-stream before the usage chunk): what the usage row records.
        estimated = outcome.estimated_tokens
        tokens = 0 if hit else (_total_tokens(outcome.usage)
                                or (estimated.total if estimated else 0))
        cost = 0.0 if hit else float(outcome.cost_usd or 0.0)
        now = time.time()
        adds = [a for s in ticket.scopes for a in charges_for(s, self.prefix, now, tokens, cost)]
        try:
            await self.counters.settle(ticket.member, ticket.slots, adds, now)
        except StoreUnavailable:
            # Slots expire by themselves; the charge is lost while Redis is away.
            self.settle_failures += 1

    async def usage(self, scope: Scope, now: float) -> list[tuple[Check, float]]:
        """Each of the scope's limits beside what its counter holds now (for the console).
        Raises StoreUnavailable when Redis cannot be read."""
        checks = checks_for(scope, self.prefix, now, self.slot_ttl)
        if not checks:
            return []
        return list(zip(checks, await self.counters.peek(checks, now), strict=True))

    @property
    def pending(self) -> int:
        """Settlements not yet done."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for pending settlements (shutdown, and tests that read counters)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _total_tokens(usage: dict[str, Any] | None) -> int:
    """What the usage row records (`from_usage`), so a limit is charged what the log says."""
    tokens = from_usage(usage) if usage else None
    return tokens.total if tokens is not None else 0


def virtual_key_scope(vk: VirtualKey) -> Scope:
    return Scope("virtual_key", vk.id, f"virtual key '{vk.slug}'", vk.limits)


def api_key_scope(principal: Principal) -> Scope:
    return Scope("api_key", principal.id, f"API key '{principal.name}'", principal.limits)

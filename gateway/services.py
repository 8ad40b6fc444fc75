"""Everything long-lived the request path uses, created once in the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.credentials import ServiceAccountTokens
from gateway.hostguard import HostGuard
from gateway.resolve import NoKeyStore, Resolver
from gateway.settings import Settings

# Receives each finished request's context (usage logging, metrics); must not block.
Recorder = Callable[[Any], None]


@dataclass(slots=True)
class Services:
    settings: Settings
    http: httpx.AsyncClient
    host_guard: HostGuard
    resolver: Resolver = field(default_factory=NoKeyStore)
    recorders: list[Recorder] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    tokens: ServiceAccountTokens = field(default_factory=ServiceAccountTokens)

    def record(self, ctx: Any) -> None:
        """Hand a finished request to every recorder, exactly once."""
        if getattr(ctx, "recorded", False):
            return
        ctx.recorded = True
        for recorder in self.recorders:
            recorder(ctx)

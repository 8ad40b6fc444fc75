"""Everything long-lived the request path uses, created once in the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.hostguard import HostGuard
from gateway.settings import Settings

# Receives each finished request's context; usage logging plugs in here.
Recorder = Callable[[Any], None]


def _discard(_ctx: Any) -> None:
    return None


@dataclass(slots=True)
class Services:
    settings: Settings
    http: httpx.AsyncClient
    host_guard: HostGuard
    record: Recorder = _discard
    extras: dict[str, Any] = field(default_factory=dict)

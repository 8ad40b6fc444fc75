"""A leaf of the routing tree: one provider target with everything it inherited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.contracts.identity import VirtualKey
from gateway.guardrails.hooks import NO_HOOKS, HookSet

DEFAULT_RETRY_CODES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 0
    on_status_codes: frozenset[int] = DEFAULT_RETRY_CODES
    use_retry_after_header: bool = True
    # False when on_status_codes is the default: then connection errors and timeouts retry too.
    explicit_codes: bool = False


@dataclass(frozen=True, slots=True)
class CachePolicy:
    mode: str = "simple"
    max_age: int | None = None  # seconds


@dataclass(frozen=True, slots=True)
class Leaf:
    path: str  # JSON path of the leaf, e.g. "config.targets[1].targets[0]"
    provider: str
    api_key: str | None = field(default=None, repr=False)  # never in logs, even by accident
    virtual_key: VirtualKey | None = None
    custom_host: str | None = None  # from the client: passes the SSRF guard first
    base_url: str | None = None  # set by the operator (a virtual key): trusted
    # A saved config gave it an api_key or a credential option: bound like a virtual key's.
    stored_key: bool = False
    options: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    override_params: Mapping[str, Any] = field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    request_timeout_ms: int | None = None
    forward_headers: tuple[str, ...] = ()
    cache: CachePolicy | None = None
    # Guardrails and mutators run before its first attempt and after its answer: its own
    # (inherited down the config tree), then the config's defaults.
    hooks: HookSet = NO_HOOKS


@dataclass(frozen=True, slots=True)
class ConditionRule:
    query: Mapping[str, Any]
    then: int  # index of the target the condition routes to


@dataclass(frozen=True, slots=True)
class Branch:
    """A strategy node: how to choose among its children."""

    path: str
    mode: str  # single | fallback | loadbalance | conditional
    children: tuple[Leaf | Branch, ...]
    weights: tuple[float, ...] = ()
    on_status_codes: frozenset[int] | None = None
    conditions: tuple[ConditionRule, ...] = ()
    default: int | None = None


Node = Leaf | Branch

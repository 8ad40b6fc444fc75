"""Circuit breakers: a target that keeps failing is skipped for a cool-down.

Kept per gateway process: each worker learns on its own, which costs at most a few extra
failed attempts per worker and needs no shared state on the request path. With
GATEWAY_CIRCUIT_SHARED a `Shared` sink (gateway/routing/shared_circuits.py) also counts the
failures of every replica in Redis, in the background, and opens the circuit in all of them
(`adopt`); the request path still reads only this process's dict.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from gateway.contracts.plan import Leaf

# Failures that say the target is unhealthy, not that the request was bad.
TRIPPING_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def target_key(leaf: Leaf) -> str:
    """Identity of an upstream target: provider, host and a digest of the key."""
    key = leaf.virtual_key.id if leaf.virtual_key else (leaf.api_key or "")
    return _target_key(leaf.provider, leaf.custom_host or leaf.base_url or "", key)


@lru_cache(maxsize=4096)
def _target_key(provider: str, host: str, key: str) -> str:
    return f"{provider}|{host}|{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class Shared(Protocol):
    """Where a process reports what it saw, for every replica; must not block."""

    def failed(self, key: str) -> None: ...

    def succeeded(self, key: str) -> None: ...


@dataclass
class _Circuit:
    failures: deque[float] = field(default_factory=deque)
    open_until: float = 0.0


class Breakers:
    def __init__(self, threshold: int, window_s: float, cooldown_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.opens = 0  # how many times a circuit opened, for metrics
        self.adopted = 0  # circuits opened here because another replica's failures opened them
        self.shared: Shared | None = None
        self._circuits: dict[str, _Circuit] = {}

    def is_open(self, leaf: Leaf) -> bool:
        circuit = self._circuits.get(target_key(leaf))
        return circuit is not None and circuit.open_until > self.clock()

    def record(self, leaf: Leaf, status: int | None) -> None:
        key = target_key(leaf)
        if status is None or status not in TRIPPING_STATUSES:
            # Only a target this process saw failing (or open) is reset for every replica.
            if self._circuits.pop(key, None) is not None and self.shared is not None:
                self.shared.succeeded(key)
            return
        if self.shared is not None:
            self.shared.failed(key)
        now = self.clock()
        circuit = self._circuits.setdefault(key, _Circuit())
        circuit.failures.append(now)
        while circuit.failures and circuit.failures[0] < now - self.window_s:
            circuit.failures.popleft()
        if len(circuit.failures) >= self.threshold and circuit.open_until <= now:
            circuit.open_until = now + self.cooldown_s
            circuit.failures.clear()
            self.opens += 1

    def adopt(self, key: str, remaining_s: float) -> None:
        """Open `key` for `remaining_s`, as the replicas' shared count decided."""
        circuit = self._circuits.setdefault(key, _Circuit())
        until = self.clock() + remaining_s
        if until > circuit.open_until:
            if circuit.open_until <= self.clock():
                self.adopted += 1
            circuit.open_until = until
        circuit.failures.clear()

    def forget(self, key: str) -> None:
        """Close `key`: a replica saw the target answer."""
        self._circuits.pop(key, None)

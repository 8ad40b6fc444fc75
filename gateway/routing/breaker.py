"""Circuit breakers: a target that keeps failing is skipped for a cool-down.

Kept per gateway process: each worker learns on its own, which costs at most a few extra
failed attempts per worker and needs no shared state on the request path.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

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
        self._circuits: dict[str, _Circuit] = {}

    def is_open(self, leaf: Leaf) -> bool:
        circuit = self._circuits.get(target_key(leaf))
        return circuit is not None and circuit.open_until > self.clock()

    def record(self, leaf: Leaf, status: int | None) -> None:
        key = target_key(leaf)
        if status is None or status not in TRIPPING_STATUSES:
            self._circuits.pop(key, None)
            return
        now = self.clock()
        circuit = self._circuits.setdefault(key, _Circuit())
        circuit.failures.append(now)
        while circuit.failures and circuit.failures[0] < now - self.window_s:
            circuit.failures.popleft()
        if len(circuit.failures) >= self.threshold and circuit.open_until <= now:
            circuit.open_until = now + self.cooldown_s
            circuit.failures.clear()
            self.opens += 1

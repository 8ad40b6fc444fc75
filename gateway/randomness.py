"""The random bytes of the ids the gateway makes on the request path (request, response,
message and call ids): from the system's generator, pooled.

Drawn from os.urandom 1 KB at a time and each handed out once: a request needs 3 to 5 ids, and
one getrandom call each cost ~2 µs in a loaded gateway on this VM (a syscall, where a slice
of the pool costs 0.2). A forked child starts with a pool of its own (never its parent's).
A module of its own, below every package that makes ids.
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 1024
_pool = b""
_at = 0
_lock = threading.Lock()  # (ids are made on the event loop; a thread must not share a draw)


def random_bytes(count: int) -> bytes:
    """`count` bytes from the system's generator, never given out twice."""
    global _pool, _at
    if count > _POOL_BYTES:
        return os.urandom(count)
    with _lock:
        end = _at + count
        if end > len(_pool):
            _pool, _at, end = os.urandom(_POOL_BYTES), 0, count
        drawn, _at = _pool[_at:end], end
    return drawn


def _forget_pool() -> None:
    """In a forked child: a pool of its own, and a lock no thread of the parent holds."""
    global _pool, _at, _lock
    _pool, _at, _lock = b"", 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)

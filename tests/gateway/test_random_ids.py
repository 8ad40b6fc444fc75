"""The pool the request path's ids draw their random bytes from (gateway/randomness.py)."""

from __future__ import annotations

import os
import signal

from gateway import randomness as ids


def test_draws_are_never_repeated_across_refills():
    draws = [ids.random_bytes(24) for _ in range(1000)]  # ~23 refills of the pool
    assert all(len(draw) == 24 for draw in draws)
    assert len(set(draws)) == len(draws)
    # Every byte value appears: the bytes are the generator's, not a fixed or zeroed pool.
    assert len(set(b"".join(draws))) == 256


def test_a_forked_child_does_not_draw_its_parents_bytes():
    ids.random_bytes(8)  # the parent's pool holds bytes not yet drawn
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next draw
        os.write(write, ids.random_bytes(16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != ids.random_bytes(16)  # the parent's next draw differs from the child's


def test_a_child_forked_while_the_pool_is_locked_can_still_draw():
    """A thread of the parent holding the pool's lock at the fork: the child's lock is new
    (the inherited one would never be released there)."""
    read, write = os.pipe()
    with ids._lock:  # as another thread would be, mid-draw
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)  # a deadlocked child dies, and reports nothing
            os.write(write, ids.random_bytes(16))
            os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and len(child) == 16

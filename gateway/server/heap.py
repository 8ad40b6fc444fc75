"""Keep the garbage collector's passes few and short in a serving process."""

from __future__ import annotations

import gc
import threading

# Apps serving in this process (tests and embedders start several, stopped in any order):
# the thresholds Python had before the first are restored when the last stops.
_lock = threading.Lock()
_serving = 0
_before: tuple[int, int, int] = gc.get_threshold()


def freeze_startup_objects(young_threshold: int) -> None:
    """Exempt everything alive once start-up is done (modules, classes, settings, pools: about
    100k objects) from later collections, and collect the youngest generation only once
    `young_threshold` more container objects are alive than at the last collection (0 keeps
    Python's threshold).

    A full (oldest-generation) collection walks every tracked object: about 75 ms here, a
    stall for every request in flight. Usage rows that wait in the writer's queue age into
    that generation and trigger one about twice a second under load, which put logging's cost
    into the p99 latency. After the freeze a full pass walks only what was made since.
    Objects frozen are still freed by reference counting; only their cycles are not collected.

    Python's young threshold (700) is smaller than what requests in flight hold: at
    concurrency 64 their objects come and go by thousands, so a young collection ran every
    few requests, walking them all (~0.1 ms each, and their survivors again in the middle
    generation): 12% of the CPU a request. What a request makes is nearly all freed by
    reference counting when it ends, so above that swing collections become rare (none in 5
    s at 1,800 req/s with 50,000). The threshold counts objects, not bytes: garbage cycles
    wait longer for a collection, and one that held a large body would hold it that much
    longer (docs/decisions.md, "The serving process")."""
    global _serving, _before
    with _lock:
        if _serving == 0:
            _before = gc.get_threshold()
        _serving += 1
        gc.collect()
        gc.freeze()
        if young_threshold > 0:
            gc.set_threshold(young_threshold, _before[1], _before[2])


def unfreeze() -> None:
    """At shutdown: a process that starts another app (tests, embedding) collects this one;
    the last app to stop gives back the thresholds the process had before the first."""
    global _serving
    with _lock:
        _serving = max(_serving - 1, 0)
        gc.unfreeze()
        if _serving == 0:
            gc.set_threshold(*_before)

"""The serving process's young-generation threshold (GATEWAY_GC_YOUNG_THRESHOLD,
gateway/server/heap.py): applied once start-up is done, restored when the last app of the
process stops (apps stopped in any order), and cyclic garbage is still collected once that
many objects pile up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SERVE = """
import asyncio, gc, sys
from gateway.app import create_app

before = gc.get_threshold()
collected = []
gc.callbacks.append(lambda phase, info: phase == "stop" and collected.append(info["collected"]))

async def main():
    app = create_app()
    async with app.router.lifespan_context(app):
        serving = gc.get_threshold()
        collected.clear()
        for _ in range(3 * max(serving[0], 700)):  # cycles: freed only by a collection
            cycle = []
            cycle.append(cycle)
        print(serving[0], sum(collected) > 0)

asyncio.run(main())
print(gc.get_threshold() == before)
"""


def _serve(tmp_path: Path, threshold: str | None) -> list[str]:
    database = f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3"
    env = {**os.environ, "DATABASE_URL": database, "GATEWAY_DATABASE_URL": database,
           "PYTHONPATH": str(ROOT)}
    env.pop("GATEWAY_GC_YOUNG_THRESHOLD", None)
    if threshold is not None:
        env["GATEWAY_GC_YOUNG_THRESHOLD"] = threshold
    done = subprocess.run([sys.executable, "-c", _SERVE], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_default_threshold_applies_while_serving_and_cycles_are_still_collected(
        tmp_path: Path) -> None:
    assert _serve(tmp_path, None) == ["50000", "True", "True"]


def test_the_threshold_is_a_setting_and_zero_keeps_pythons(tmp_path: Path) -> None:
    assert _serve(tmp_path, "20000") == ["20000", "True", "True"]
    assert _serve(tmp_path, "0") == ["700", "True", "True"]


_OVERLAPPING = """
import asyncio, gc
from gateway.app import create_app

before = gc.get_threshold()

async def main():
    first, second = create_app(), create_app()
    a, b = first.router.lifespan_context(first), second.router.lifespan_context(second)
    await a.__aenter__()
    await b.__aenter__()
    await a.__aexit__(None, None, None)  # stopped in start order, as tests stop gateways
    print(gc.get_threshold()[0])  # the second still serves
    await b.__aexit__(None, None, None)
    print(gc.get_threshold() == before)

asyncio.run(main())
"""


def test_the_last_app_to_stop_restores_pythons_threshold(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3"
    env = {**os.environ, "DATABASE_URL": database, "GATEWAY_DATABASE_URL": database,
           "PYTHONPATH": str(ROOT)}
    env.pop("GATEWAY_GC_YOUNG_THRESHOLD", None)
    done = subprocess.run([sys.executable, "-c", _OVERLAPPING], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["50000", "True"]

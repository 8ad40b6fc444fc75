"""`python -m bench.journal_switch serve ...`: the gateway, with its usage journal switchable by
signal, for bench.journal_cost.

SIGUSR1: no journal (rows wait only in memory); SIGUSR2: the journal as it ships (write(), no
fsync); SIGURG: the journal with an fdatasync after every write (GATEWAY_USAGE_JOURNAL_FSYNC).
One process measured against itself: two identical gateway processes read apart by as much
as the journal costs on a busy 2-core machine (bench.usage_switch says why).

With JOURNAL_SWITCH_STATS set to a file, each Journal.append is also timed in place (the
thread's CPU time, user and system, and wall time), and every signal first appends what the
state it ends measured to that file, as a JSON line.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

import orjson

from gateway import app
from gateway.cli.main import main
from gateway.observability.otel import Telemetry
from gateway.pipeline.services import Services
from gateway.settings import Settings
from gateway.usage.journal import Journal

MODES = {signal.SIGUSR1: "off", signal.SIGUSR2: "on", signal.SIGURG: "fsync"}
STATS_ENV = "JOURNAL_SWITCH_STATS"
_open_services = app.open_services


class TimedAppends:
    """Journal.append with its cost counted, per state."""

    def __init__(self, journal: Journal) -> None:
        self.append = journal.append
        self.mode = "on"
        self.calls = self.rows = self.cpu_ns = self.wall_ns = 0

    def __call__(self, rows: list[bytes], queued: int) -> None:
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        self.append(rows, queued)
        self.cpu_ns += time.thread_time_ns() - cpu
        self.wall_ns += time.perf_counter_ns() - wall
        self.calls += 1
        self.rows += len(rows)

    def flush(self, path: str, mode: str) -> None:
        line: dict[str, Any] = {"mode": self.mode, "calls": self.calls, "rows": self.rows,
                                "cpu_ns": self.cpu_ns, "wall_ns": self.wall_ns}
        with open(path, "ab") as file:
            file.write(orjson.dumps(line) + b"\n")
        self.mode, self.calls, self.rows, self.cpu_ns, self.wall_ns = mode, 0, 0, 0, 0


async def _switchable_services(settings: Settings, telemetry: Telemetry | None,
                               parts: AsyncExitStack) -> Services:
    services = await _open_services(settings, telemetry, parts)
    usage = services.usage
    journal = usage.journal if usage is not None else None
    if usage is None or journal is None:
        raise SystemExit("bench.journal_switch needs the usage log and its journal on")
    stats_path = os.environ.get(STATS_ENV)
    timed = TimedAppends(journal)
    if stats_path:
        journal.append = timed  # type: ignore[method-assign]

    def switch(mode: str) -> None:  # on the event loop, between requests
        if stats_path:
            timed.flush(stats_path, mode)
        usage.journal = None if mode == "off" else journal
        journal.fsync = mode == "fsync"

    loop = asyncio.get_running_loop()
    for signum, mode in MODES.items():
        loop.add_signal_handler(signum, switch, mode)
    return services


app.open_services = _switchable_services

if __name__ == "__main__":
    sys.exit(main())

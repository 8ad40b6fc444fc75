"""`python -m bench.journal_switch serve ...`: the gateway, with its usage journal switchable by
signal, for bench.journal_cost.

SIGUSR1: no journal (rows wait only in memory); SIGUSR2: the journal as it ships (write(), no
fsync); SIGURG: the journal with an fdatasync after every write (GATEWAY_USAGE_JOURNAL_FSYNC).
One process measured against itself: two identical gateway processes read apart by as much
as the journal costs on a busy 2-core machine (bench.usage_switch says why).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from contextlib import AsyncExitStack

from gateway import app
from gateway.cli.main import main
from gateway.observability.otel import Telemetry
from gateway.pipeline.services import Services
from gateway.settings import Settings

MODES = {signal.SIGUSR1: "off", signal.SIGUSR2: "on", signal.SIGURG: "fsync"}
_open_services = app.open_services


async def _switchable_services(settings: Settings, telemetry: Telemetry | None,
                               parts: AsyncExitStack) -> Services:
    services = await _open_services(settings, telemetry, parts)
    usage = services.usage
    journal = usage.journal if usage is not None else None
    if usage is None or journal is None:
        raise SystemExit("bench.journal_switch needs the usage log and its journal on")

    def switch(mode: str) -> None:  # on the event loop, between requests
        usage.journal = None if mode == "off" else journal
        journal.fsync = mode == "fsync"

    loop = asyncio.get_running_loop()
    for signum, mode in MODES.items():
        loop.add_signal_handler(signum, switch, mode)
    return services


app.open_services = _switchable_services

if __name__ == "__main__":
    sys.exit(main())

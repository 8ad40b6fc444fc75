"""`python -m bench.usage_switch serve ...`: the gateway, with its usage log switchable by signal.

For `bench.usage_overhead`: SIGUSR1 detaches the usage recorder (no row is built or queued,
as with `GATEWAY_USAGE_LOG=false`; the idle writer only wakes once a second), SIGUSR2 attaches
it again. Comparing one process with itself removes what two processes differ by (memory
layout, hash seeds, which core the scheduler gives them): two identical gateways read up to
13% apart in p99 on a 2-core VM, as wide as the target being measured.
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

_open_services = app.open_services


async def _switchable_services(settings: Settings, telemetry: Telemetry | None,
                               parts: AsyncExitStack) -> Services:
    services = await _open_services(settings, telemetry, parts)
    usage = services.usage
    if usage is None:
        raise SystemExit("bench.usage_switch needs the usage log on (a database and "
                         "GATEWAY_USAGE_LOG=true)")
    # The Services are immutable, but the bench swaps the recorders its Recording runs (one
    # tuple assignment, made between requests by the signal handler on the event loop).
    recording = services.recording

    def detach() -> None:
        recording.recorders = tuple(r for r in recording.recorders if r != usage.record)

    def attach() -> None:
        if usage.record not in recording.recorders:
            # First, as open_services puts it: the recorders after it read the cost it sets.
            recording.recorders = (usage.record, *recording.recorders)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, detach)
    loop.add_signal_handler(signal.SIGUSR2, attach)
    return services


app.open_services = _switchable_services

if __name__ == "__main__":
    sys.exit(main())

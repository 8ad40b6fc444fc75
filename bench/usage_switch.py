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

from gateway.cli.main import main
from gateway.services import Services
from gateway.usage import setup

_start = setup.start


async def _switchable_start(services: Services) -> None:
    await _start(services)
    usage = services.usage
    if usage is None:
        raise SystemExit("bench.usage_switch needs the usage log on (a database and "
                         "GATEWAY_USAGE_LOG=true)")

    def detach() -> None:
        if usage.record in services.recorders:
            services.recorders.remove(usage.record)

    def attach() -> None:
        if usage.record not in services.recorders:
            services.recorders.insert(0, usage.record)  # first, as setup.start puts it

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, detach)
    loop.add_signal_handler(signal.SIGUSR2, attach)


setup.start = _switchable_start

if __name__ == "__main__":
    sys.exit(main())

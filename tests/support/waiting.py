"""Waiting, by polling, for what a gateway does after its response went out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout: float = 10,
               interval: float = 0.01) -> bool:
    """Poll `condition` until it holds or `timeout` seconds passed; say whether it held.

    The gateway hands a request to its recorders just after the client got the last byte, so
    a test that reads what was recorded must wait for it rather than read at once.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


async def until(condition: Callable[[], object], timeout: float = 10,
                interval: float = 0.005) -> bool:
    """`wait_until` inside a coroutine: polls without blocking the event loop on which the
    code under test (a writer task, a timer) has to run meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True

"""Record: hand each finished request's `Outcome` to the recorders, exactly once.

Recorders (the usage log first, then metrics and limit settlement) must not block. A request
whose tokens must be counted locally (no usage from the upstream) is counted in a worker
thread first, then recorded: the response never waits for it, and the event loop never
counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from gateway.contracts.outcome import Outcome
from gateway.usage.row import needs_estimate
from gateway.usage.tokens import estimate_off_loop

log = logging.getLogger("gateway")

Recorder = Callable[[Outcome], None]


class Recording:
    def __init__(self, recorders: Sequence[Recorder]) -> None:
        self.recorders = tuple(recorders)
        # Requests whose tokens are being counted before they are recorded.
        self.counting: set[asyncio.Task[None]] = set()

    def record(self, outcome: Outcome) -> None:
        if outcome.recorded:
            return
        outcome.recorded = True
        outcome.finished_ms = outcome.elapsed_ms()
        if needs_estimate(outcome):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # recorded outside the event loop: counted where it is
                pass
            else:
                task = loop.create_task(self._record_counted(outcome))
                self.counting.add(task)
                task.add_done_callback(self.counting.discard)
                return
        self._run_recorders(outcome)

    async def _record_counted(self, outcome: Outcome) -> None:
        try:
            outcome.estimated_tokens = await estimate_off_loop(outcome.request.body,
                                                               outcome.completion)
        except Exception:  # recorded without tokens rather than not at all
            log.exception("could not count the tokens of request %s", outcome.request.request_id)
        self._run_recorders(outcome)

    def _run_recorders(self, outcome: Outcome) -> None:
        for recorder in self.recorders:
            recorder(outcome)

    async def drain(self) -> None:
        """Wait for the requests still being counted to be recorded (shutdown: before the
        usage log and the limiter close)."""
        while self.counting:
            await asyncio.gather(*list(self.counting), return_exceptions=True)

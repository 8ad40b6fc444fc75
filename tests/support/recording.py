"""Watch what a running gateway records: one more recorder on its (immutable) Services."""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.pipeline.record import Recorder, Recording
from tests.support.servers import ThreadedServer


def add_recorder(server: ThreadedServer, recorder: Recorder) -> None:
    """Give the gateway's app a Services whose recorders end with `recorder` (so it runs
    after the usage log, metrics and the limiter). Call before the requests it should see."""
    state: Any = server.config.app.state
    services = state.services
    recording = Recording([*services.recording.recorders, recorder])
    # The lifespan drains the first Recording at shutdown: it waits for these tasks too.
    recording.counting = services.recording.counting
    state.services = dataclasses.replace(services, recording=recording)

"""Request and trace ids: every response carries both."""

from __future__ import annotations

import re
import uuid

from starlette.requests import Request

from gateway.randomness import random_bytes

_TRACE_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


def request_ids(request: Request) -> tuple[str, str]:
    """The request's (request id, trace id), made once and kept on request.state."""
    ids = getattr(request.state, "ids", None)
    if ids is None:
        request_id = uuid.UUID(bytes=random_bytes(16), version=4)
        trace = request.headers.get("x-portkey-trace-id", "")
        if not _TRACE_ID.match(trace):
            trace = request_id.hex  # one random draw serves both ids
        ids = (str(request_id), trace)
        request.state.ids = ids
    return ids

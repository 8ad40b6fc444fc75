"""What an attempt hands back: a JSON answer, an opened stream, or a passthrough response."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from providers.base import StreamState


@dataclass(slots=True)
class JSONAnswer:
    status: int
    content: bytes
    headers: dict[str, str]
    native: bool = False  # in the client's own dialect already (a native target's answer)


@dataclass(slots=True)
class StreamAnswer:
    """An upstream stream whose first chunks are in hand; `rest` yields the others."""

    first: list[dict[str, Any]]
    rest: AsyncIterator[dict[str, Any]]
    state: StreamState
    response: httpx.Response
    headers: dict[str, str]
    strip_usage: bool  # the gateway asked for usage; the client did not
    # The chunks are the client's dialect's own events (a native target's), not OpenAI chunks.
    native: bool = False


@dataclass(slots=True)
class RawAnswer:
    """A passthrough response relayed byte for byte."""

    response: httpx.Response
    headers: dict[str, str]


Answer = JSONAnswer | StreamAnswer | RawAnswer


def answer_status(answer: Answer) -> int:
    if isinstance(answer, JSONAnswer):
        return answer.status
    return answer.response.status_code

"""AWS's binary event-stream framing (Bedrock's ConverseStream), decoded incrementally.

Frames are parsed and CRC-checked by botocore's `EventStreamBuffer`; each becomes an
`SSEEvent` named by its `:event-type` header (`:exception-type` for an exception, and
`error`, with `{"message", "code"}`, for a transport error frame),
with the JSON payload as `data`, so adapters read it exactly like a server-sent event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from gateway.errors import UpstreamMalformed
from providers.base import SSEEvent


def to_event(headers: dict[str, object], payload: bytes) -> SSEEvent:
    if headers.get(":message-type") == "error":  # a transport-level error frame
        message = str(headers.get(":error-message") or payload.decode(errors="replace"))
        data = {"message": message, "code": str(headers.get(":error-code") or "")}
        return SSEEvent(event="error", data=orjson.dumps(data).decode())
    name = headers.get(":event-type") or headers.get(":exception-type") or ""
    return SSEEvent(event=str(name), data=payload.decode(errors="replace"))


async def decode_eventstream(chunks: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    # botocore loads on the first Bedrock stream: a gateway that never calls AWS keeps the
    # memory.
    from botocore.eventstream import EventStreamBuffer, ParserError

    buffer = EventStreamBuffer()
    async for chunk in chunks:
        buffer.add_data(chunk)
        try:
            messages = list(buffer)
        except ParserError as exc:
            raise UpstreamMalformed(f"the AWS event stream is corrupt: {exc}") from None
        for message in messages:
            yield to_event(message.headers, message.payload)

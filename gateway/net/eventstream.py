"""AWS's binary event-stream framing (Bedrock's ConverseStream), decoded incrementally.

Frames are parsed and CRC-checked by botocore's `EventStreamBuffer`; each becomes an
`SSEEvent` named by its `:event-type` header (`:exception-type` for an exception, and
`error`, with `{"message", "code"}`, for a transport error frame),
with the JSON payload as `data`, so adapters read it exactly like a server-sent event.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator, Iterator

import orjson

from gateway.errors import UpstreamMalformed, UpstreamTooLarge
from providers.base import SSEEvent

# The largest frame accepted, in bytes (the gateway passes GATEWAY_MAX_UPSTREAM_BODY_BYTES).
DEFAULT_MAX_FRAME_BYTES = 32 * 1024 * 1024
_PRELUDE = struct.Struct(">III")  # total length, headers length, CRC32 of the first 8 bytes
_MIN_FRAME = _PRELUDE.size + 4  # a prelude and the message CRC


def to_event(headers: dict[str, object], payload: bytes) -> SSEEvent:
    if headers.get(":message-type") == "error":  # a transport-level error frame
        message = str(headers.get(":error-message") or payload.decode(errors="replace"))
        data = {"message": message, "code": str(headers.get(":error-code") or "")}
        return SSEEvent(event="error", data=orjson.dumps(data).decode())
    name = headers.get(":event-type") or headers.get(":exception-type") or ""
    return SSEEvent(event=str(name), data=payload.decode(errors="replace"))


async def decode_eventstream(chunks: AsyncIterator[bytes],
                             max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                             ) -> AsyncIterator[SSEEvent]:
    # botocore loads on the first Bedrock stream: a gateway that never calls AWS keeps the
    # memory.
    from botocore.eventstream import EventStreamBuffer, ParserError

    # Frames are cut here and handed to botocore one at a time: its buffer appends with
    # bytes concatenation, quadratic for a large frame arriving in many chunks.
    pending = bytearray()
    buffer = EventStreamBuffer()
    async for chunk in chunks:
        pending += chunk
        for frame in _whole_frames(pending, max_frame_bytes):
            buffer.add_data(frame)
            try:
                messages = list(buffer)
            except ParserError as exc:
                raise UpstreamMalformed(f"the AWS event stream is corrupt: {exc}") from None
            for message in messages:
                # botocore-stubs types `headers` as int; botocore sets the parsed header dict.
                yield to_event(message.headers, message.payload)  # type: ignore[arg-type]


def _whole_frames(pending: bytearray, limit: int) -> Iterator[bytes]:
    """Complete frames taken off the front of `pending`; a frame's declared length is checked
    (prelude CRC first) before any more of it is awaited."""
    while len(pending) >= _PRELUDE.size:
        total, _, crc = _PRELUDE.unpack_from(pending)
        if zlib.crc32(pending[:8]) != crc or total < _MIN_FRAME:
            raise UpstreamMalformed("the AWS event stream is corrupt: bad prelude")
        if total > limit:
            raise UpstreamTooLarge(f"the upstream sent an event-stream frame of {total} bytes, "
                                   f"over the gateway's limit of {limit}")
        if len(pending) < total:
            return
        frame = bytes(pending[:total])
        del pending[:total]
        yield frame

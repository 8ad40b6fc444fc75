from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import UpstreamMalformed
from gateway.net.eventstream import decode_eventstream
from tests.support.eventstream_encode import frame

FIXTURE = Path(__file__).parents[1] / "fixtures" / "bedrock" / "tools"


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize("size", [1, 7, 4096])
async def test_frames_split_anywhere_decode_to_events(size: int) -> None:
    recorded = json.loads((FIXTURE / "stream.events.json").read_text())
    events = [e async for e in decode_eventstream(
        pieces((FIXTURE / "stream.bin").read_bytes(), size))]
    assert [e.event for e in events] == [r["headers"][":event-type"] for r in recorded]
    assert [json.loads(e.data) for e in events] == [r["payload"] for r in recorded]


async def test_exception_and_error_frames_are_named() -> None:
    data = frame({":exception-type": "throttlingException", ":message-type": "exception"},
                 b'{"message":"slow down"}')
    data += frame({":error-code": "InternalFailure", ":error-message": "boom",
                   ":message-type": "error"}, b"")
    events = [e async for e in decode_eventstream(pieces(data, 5))]
    assert [(e.event, json.loads(e.data)) for e in events] == [
        ("throttlingException", {"message": "slow down"}),
        ("error", {"message": "boom", "code": "InternalFailure"})]


async def test_corrupt_frame_is_malformed_upstream() -> None:
    data = bytearray(frame({":event-type": "messageStart"}, b'{"role":"assistant"}'))
    data[-1] ^= 0xFF  # break the message CRC
    with pytest.raises(UpstreamMalformed, match="corrupt"):
        [e async for e in decode_eventstream(pieces(bytes(data), 64))]

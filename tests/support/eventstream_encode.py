"""Encode AWS event-stream frames (for Bedrock fixtures): the inverse of gateway/net/eventstream.py.

`python -m tests.support.eventstream_encode DIR` rewrites DIR/stream.bin from the readable
DIR/stream.events.json (a list of `{"headers": {...}, "payload": {...}}`); the fixture test
checks that the two files agree.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import orjson

_STRING = 7  # header value type: UTF-8 string


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(
        struct.pack(">B", len(name)) + name.encode() + struct.pack(">BH", _STRING, len(value))
        + value.encode() for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def encode_events(events: list[dict[str, Any]]) -> bytes:
    return b"".join(frame(e["headers"], orjson.dumps(e["payload"])) for e in events)


def main(directory: str) -> None:
    folder = Path(directory)
    events = orjson.loads((folder / "stream.events.json").read_bytes())
    (folder / "stream.bin").write_bytes(encode_events(events))


if __name__ == "__main__":
    main(sys.argv[1])

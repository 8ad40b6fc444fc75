"""Server-sent events: an incremental decoder (WHATWG rules) and the encoder for OpenAI chunks."""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

from gateway.errors import UpstreamTooLarge
from providers.base import SSEEvent

DONE = b"data: [DONE]\n\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# The longest line, and the most data one event may gather, in UTF-8 bytes (the gateway passes
# GATEWAY_MAX_UPSTREAM_BODY_BYTES): a line that never ends must not grow memory without bound.
# Bytes, not characters: a cap in characters let a line of 4-byte emoji reach four times it.
DEFAULT_MAX_EVENT_BYTES = 32 * 1024 * 1024


def _utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8, as they came off the wire; ASCII costs no copy."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class SSEDecoder:
    """Turns network chunks into events; partial lines wait for the next chunk."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = max_bytes
        self._partial: list[str] = []  # pieces of a line whose end has not come yet
        self._partial_size = 0
        self._pending_cr = False
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self._id = ""
        self._retry: int | None = None

    def feed(self, chunk: str) -> list[SSEEvent]:
        if self._pending_cr and chunk.startswith("\n"):
            chunk = chunk[1:]
        self._pending_cr = chunk.endswith("\r")
        # Only CR, LF and CRLF end a line: str.splitlines would also split inside JSON
        # strings holding U+2028, U+0085 or \x1c, which models do emit. Only the new chunk
        # is scanned, so a long line costs linear time, not quadratic.
        *lines, tail = _LINE_BREAK.split(chunk)
        if lines and self._partial:
            lines[0] = "".join(self._partial) + lines[0]
            self._partial, self._partial_size = [], 0
        if tail:
            self._partial_size += _utf8_size(tail)
            if self._partial_size > self._max:
                raise _too_large("line", self._max)
            self._partial.append(tail)
        events = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """Flush a final event whose blank line never came."""
        events = self.feed("\n") if self._partial else []
        event = self._line("")
        return events + ([event] if event is not None else [])

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data and not self._event:
                return None
            event = SSEEvent(self._event, "\n".join(self._data), self._id, self._retry)
            self._event, self._data, self._data_size, self._retry = "", [], 0, None
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data_size += _utf8_size(value) + 1
            if self._data_size > self._max:
                raise _too_large("event", self._max)
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None


def _too_large(what: str, limit: int) -> UpstreamTooLarge:
    return UpstreamTooLarge(f"the upstream sent an SSE {what} longer than {limit} bytes, "
                            "the gateway's limit")


async def decode_stream(chunks: AsyncIterator[bytes],
                        max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> AsyncIterator[SSEEvent]:
    """Events from raw network chunks; SSE is UTF-8 by definition, whatever the headers say."""
    decoder = SSEDecoder(max_bytes)
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    async for chunk in chunks:
        for event in decoder.feed(utf8.decode(chunk)):
            yield event
    for event in decoder.feed(utf8.decode(b"", final=True)) + decoder.close():
        yield event


def encode(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def encode_all(chunks: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(encode(chunk) for chunk in chunks)

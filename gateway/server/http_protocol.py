"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools protocol, with bounded request heads.

uvicorn's httptools protocol limits neither the size nor the number of request headers, nor how
long a client may take to send them (a connection that sends half a head is held forever).
This subclass does, in one place, before the app sees the request:

- a head (request line and headers) over `max_bytes`, or with more than `max_count` headers,
  is answered 431 and the connection closed, before the head is read any further;
- a head not complete `timeout_s` after the connection opened (or, on a kept-alive connection,
  after the request's first byte) is answered 408 and the connection closed.

Idle kept-alive connections are closed by uvicorn's own `timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_bytes: int
    max_count: int
    timeout_s: float


def protocol_factory(settings: Settings) -> functools.partial[BoundedHttpToolsProtocol]:
    """What `uvicorn.run(http=...)` takes: picklable, so `--workers N` carries it to workers."""
    limits = HeadLimits(settings.max_header_bytes, settings.max_header_count,
                        settings.header_timeout_s)
    return functools.partial(BoundedHttpToolsProtocol, limits=limits)


class _HeadRefused(Exception):
    """Raised in a parser callback: httptools stops parsing and re-raises from feed_data."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, limits: HeadLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        # Bytes and headers of the head being read; `_head_raw` counts whole network chunks,
        # so one header that never ends is caught before httptools has gathered it.
        self._head_open = True
        self._head_raw = 0
        self._head_bytes = 0
        self._head_count = 0
        self._refused: str | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the head's raw byte count around it."""
        if self._head_open:
            self._head_raw += len(data)
        super().data_received(data)
        if self._head_open and not self.transport.is_closing():
            if self._head_raw > self.limits.max_bytes:
                self._refuse(431, f"the request head exceeds {self.limits.max_bytes} bytes")
            elif self._head_raw and self._head_timer is None:
                # A head split over packets: timed from here. One that arrives whole (nearly
                # every request) never arms a timer.
                self._arm_head_timer()

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers every parser error so; a head this class stopped gets its 431."""
        if self._refused is not None:
            self._refuse(431, self._refused)
        else:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = self._head_count = 0

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > self.limits.max_bytes:
            self._stop(f"the request head exceeds {self.limits.max_bytes} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        self._head_bytes += len(name) + len(value) + 4
        if self._head_count > self.limits.max_count:
            self._stop(f"the request has more than {self.limits.max_count} headers")
        if self._head_bytes > self.limits.max_bytes:
            self._stop(f"the request head exceeds {self.limits.max_bytes} bytes")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._head_raw = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_open = True  # what comes next on this connection is the next head

    def _stop(self, reason: str) -> None:
        self._refused = reason
        raise _HeadRefused(reason)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(408, f"the request head did not arrive within "
                              f"{self.limits.timeout_s:g} s", "timeout_error", "request_timeout")
        else:  # a pipelined head stalled behind a response in progress: no room for a 408
            self.transport.close()

    def _refuse(self, status: int, message: str, kind: str = "invalid_request_error",
                code: str = "request_header_fields_too_large") -> None:
        """Answer with an OpenAI-style error and close: the app never sees this request."""
        self._cancel_head_timer()
        body = orjson.dumps({"error": {"message": message, "type": kind, "param": None,
                                       "code": code}})
        head = [STATUS_LINE[status]]
        head += [name + b": " + value + b"\r\n" for name, value in
                 self.server_state.default_headers]
        head += [b"content-type: application/json\r\n",
                 b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

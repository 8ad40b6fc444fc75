"""A lean HTTP/1.1 load client: raw asyncio connections kept alive, responses parsed by httptools.

Python, not wrk, so that stream and non-stream runs, direct and through the gateway, are all
measured the same way (full response time, and time to first body byte). Per request it
costs a few microseconds, far below what the gateway spends.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

import httptools
import orjson


@dataclass(slots=True)
class Result:
    status: int
    latency: float  # seconds, request written to response complete
    ttfb: float  # seconds, request written to the first body byte
    body_bytes: int
    tail: bytes  # the end of the body
    ended: bool  # the stream's end marker came (`data: [DONE]`, `response.completed` ...)


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self, end: bytes = b"[DONE]") -> None:
        self.end = end
        self.ended = False
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Result] | None = None
        self.started = self.first = 0.0
        self.size = 0
        self.tail = b""
        self.lost = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, host: str, port: int, end: bytes = b"[DONE]") -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: cls(end), host, port)
        return protocol

    def request(self, data: bytes) -> asyncio.Future[Result]:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.size, self.first, self.tail, self.ended = 0, 0.0, b"", False
        self.started = time.perf_counter()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("server closed the connection"))
        if not self.lost.done():
            self.lost.set_result(None)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        if not self.first:
            self.first = time.perf_counter()
        self.size += len(body)
        window = self.tail + body
        self.ended = self.ended or self.end in window
        self.tail = window[-64:]

    def on_message_complete(self) -> None:
        now = time.perf_counter()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Result(self.parser.get_status_code(), now - self.started,
                                     (self.first or now) - self.started, self.size, self.tail,
                                     self.ended))


def chat_request(port: int, *, stream: bool, provider: str = "openai",
                 extra: dict[str, object] | None = None) -> bytes:
    """The raw bytes of one chat completion request, as the OpenAI SDK would send it."""
    body = orjson.dumps({
        "model": "bench-model", "stream": stream,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        **(extra or {}),
    })
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            "content-type: application/json\r\naccept: application/json\r\n"
            f"authorization: Bearer sk-bench\r\nx-portkey-provider: {provider}\r\n"
            f"content-length: {len(body)}\r\n\r\n")
    return head.encode() + body


@dataclass
class Run:
    """What one load level measured."""

    concurrency: int
    stream: bool
    seconds: float = 0.0
    results: list[Result] = field(default_factory=list)
    failures: int = 0
    completed: int = 0  # responses, warm-up included
    cpu_seconds: float = float("nan")  # the server's CPU time over the run, warm-up included

    @property
    def ok(self) -> list[Result]:
        # A stream counts only when it ended properly (`data: [DONE]`, or its dialect's end).
        return [r for r in self.results if r.status == 200 and (not self.stream or r.ended)]

    @property
    def rps(self) -> float:
        return len(self.ok) / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.failures + len(self.results) - len(self.ok)

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_seconds / self.completed if self.completed else float("nan")

    def percentile(self, q: float, attr: str = "latency") -> float:
        values = sorted(getattr(r, attr) for r in self.ok)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]


async def load(port: int, data: bytes, concurrency: int, duration: float,
               warmup: float, *, stream: bool, end: bytes = b"[DONE]") -> Run:
    """`concurrency` connections, each sending `data` back to back; results after warm-up.
    A stream counts as answered when `end` came in its body."""
    connections = [await Connection.open("127.0.0.1", port, end) for _ in range(concurrency)]
    run = Run(concurrency, stream)
    loop = asyncio.get_running_loop()
    begin = loop.time() + warmup
    end = begin + duration

    async def worker(conn: Connection) -> None:
        while loop.time() < end:
            try:
                result = await conn.request(data)
            except OSError:
                run.failures += 1
                return
            run.completed += 1
            if loop.time() >= begin:
                run.results.append(result)

    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for conn in connections:
            conn.close()
    # The measured window: from the end of warm-up to the last response.
    run.seconds = max(loop.time() - begin, 1e-9)
    return run

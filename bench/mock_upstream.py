"""A fast OpenAI-compatible upstream for benchmarks: a raw asyncio HTTP/1.1 server.

It answers `POST .../chat/completions` (any path ending so), stream or not, with usage, and
`GET .../models`. It is built to cost far less CPU per request than the gateway, so that a
through-gateway run measures the gateway: httptools parses requests, responses are mostly
prebuilt bytes, connections are kept alive, and uvloop runs the loop when installed.

A request body may carry `mock_chunks` (content chunks in a stream) and `mock_delay_ms` (a pause
before each chunk), which pass through the gateway untouched, so one mock serves both fast
and slow-stream runs; `--chunks` and `--delay-ms` set the defaults.

    python bench/mock_upstream.py --port 9100 [--chunks 8] [--delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any, cast

import httptools
import orjson

from bench.harness import run_fast

_COMPLETION = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
    "model": "bench-model", "system_fingerprint": "fp_bench",
    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                 "message": {"role": "assistant", "content": "Hello from the benchmark mock."}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
})
_MODELS = orjson.dumps({"object": "list", "data": [
    {"id": "bench-model", "object": "model", "created": 1700000000, "owned_by": "bench"}]})


def _chunk(delta: dict[str, Any], finish: str | None = None,
           usage: dict[str, int] | None = None, choices: bool = True) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
        "model": "bench-model", "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if choices else [],
    }
    if usage is not None:
        body["usage"] = usage
    return _frame(b"data: " + orjson.dumps(body) + b"\n\n")


def _frame(data: bytes) -> bytes:
    """One chunked transfer-encoding frame."""
    return b"%x\r\n%s\r\n" % (len(data), data)


_ROLE_CHUNK = _chunk({"role": "assistant", "content": ""})
_TOKEN_CHUNK = _chunk({"content": " token"})
_STOP_CHUNK = _chunk({}, finish="stop")
_DONE = _frame(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def _usage_chunk(tokens: int) -> bytes:
    return _chunk({}, usage={"prompt_tokens": 12, "completion_tokens": tokens,
                             "total_tokens": 12 + tokens}, choices=False)


def _head(status: bytes, content_type: bytes, length: int | None) -> bytes:
    size = b"transfer-encoding: chunked" if length is None else b"content-length: %d" % length
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type + b"\r\n" + size
            + b"\r\nconnection: keep-alive\r\n\r\n")


_COMPLETION_RESPONSE = _head(b"200 OK", b"application/json", len(_COMPLETION)) + _COMPLETION
_MODELS_RESPONSE = _head(b"200 OK", b"application/json", len(_MODELS)) + _MODELS
_NOT_FOUND = _head(b"404 Not Found", b"application/json", 2) + b"{}"
_STREAM_HEAD = _head(b"200 OK", b"text/event-stream", None)


class MockProtocol(asyncio.Protocol):
    """One client connection; requests on it are answered in order."""

    def __init__(self, defaults: argparse.Namespace) -> None:
        self.defaults = defaults
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.busy: asyncio.Task[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy is not None:
            self.busy.cancel()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        assert self.transport is not None
        path = url.split(b"?", 1)[0]
        if path.endswith(b"/models"):
            self.transport.write(_MODELS_RESPONSE)
            return
        if not path.endswith(b"/completions"):
            self.transport.write(_NOT_FOUND)
            return
        request = orjson.loads(body) if body else {}
        if not request.get("stream"):
            self.transport.write(_COMPLETION_RESPONSE)
            return
        chunks = int(request.get("mock_chunks", self.defaults.chunks))
        delay = float(request.get("mock_delay_ms", self.defaults.delay_ms)) / 1000
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        if delay <= 0:
            self.transport.write(_stream_body(chunks, usage))
            return
        # Requests on one connection are sequential (no pipelining from our clients).
        self.transport.pause_reading()
        self.busy = asyncio.get_running_loop().create_task(self._slow_stream(chunks, delay, usage))

    async def _slow_stream(self, chunks: int, delay: float, usage: bool) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(_STREAM_HEAD + _ROLE_CHUNK)
        for _ in range(chunks):
            await asyncio.sleep(delay)
            transport.write(_TOKEN_CHUNK)
        transport.write(_STOP_CHUNK + (_usage_chunk(chunks) if usage else b"") + _DONE)
        self.busy = None
        if not transport.is_closing():
            transport.resume_reading()


def _stream_body(chunks: int, usage: bool) -> bytes:
    return b"".join((_STREAM_HEAD, _ROLE_CHUNK, _TOKEN_CHUNK * chunks, _STOP_CHUNK,
                     _usage_chunk(chunks) if usage else b"", _DONE))


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: MockProtocol(args), args.host, args.port,
                                      backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"mock upstream on http://{args.host}:{args.port}/v1", flush=True)
    async with server:
        await stop.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--chunks", type=int, default=8, help="content chunks per stream")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="pause before each chunk")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    run_fast(serve(parse_args(argv)))


if __name__ == "__main__":
    main()

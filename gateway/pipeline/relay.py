"""Relay: turn an upstream answer into the client's response, JSON or a re-emitted SSE stream.

Streams are relayed by `SSERelay`, a pure ASGI response that listens for the client going
away while it streams: a disconnect cancels the relay at once and closes the upstream
connection. Once the first byte has gone out, an upstream failure becomes a final
`data: {"error": ...}` event (the OpenAI SDK raises it) rather than a silent clean end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.contracts.answer import Answer, JSONAnswer, RawAnswer, StreamAnswer
from gateway.contracts.outcome import Outcome
from gateway.errors import GatewayError
from gateway.net.upstream import map_httpx_errors
from gateway.pipeline.dialects import Dialect, NativeEncoder, StreamEncoder
from gateway.usage.tokens import completion_text

Finish = Callable[[Outcome], None]

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def to_response(answer: Answer, outcome: Outcome, headers: dict[str, str], finish: Finish,
                dialect: Dialect) -> Response:
    """The client's response, in its dialect; `finish` runs once the last byte is sent or the
    client left."""
    if isinstance(answer, JSONAnswer):
        outcome.status = answer.status
        if outcome.ttfb_ms is None:
            outcome.ttfb_ms = outcome.elapsed_ms()
        # A native target's answer is in the client's dialect already.
        content = dialect.encode_answer(answer.content, outcome) \
            if answer.status < 400 and not answer.native else answer.content
        return RecordedResponse(content, answer.status, headers | answer.headers,
                                outcome, finish)
    if isinstance(answer, StreamAnswer):
        encoder = dialect.stream_encoder(outcome)
        return SSERelay(answer, outcome, headers | answer.headers | _SSE_HEADERS, finish,
                        NativeEncoder(encoder) if answer.native else encoder)
    return RawRelay(answer, outcome, headers | answer.headers, finish)


class RecordedResponse(Response):
    """A JSON answer recorded once it is sent (or failed to send): logging, metrics and
    limit settlement never delay the answer, and always happen."""

    media_type = "application/json"

    def __init__(self, content: bytes, status: int, headers: dict[str, str],
                 outcome: Outcome, finish: Finish) -> None:
        super().__init__(content, status, headers)
        self.outcome = outcome
        self.finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.finish(self.outcome)


class _Relay(Response):
    """Streams a body while watching for the client's disconnect; always closes upstream."""

    def __init__(self, outcome: Outcome, status: int, headers: dict[str, str],
                 media_type: str | None, finish: Finish,
                 close_upstream: Callable[[], Awaitable[None]]) -> None:
        self.status_code = status
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self.outcome = outcome
        self.finish = finish
        self.close_upstream = close_upstream
        outcome.status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming_since = time.perf_counter()
        relay = asyncio.current_task()
        assert relay is not None
        state = {"done": False, "left": False}

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not state["done"]:
                state["left"] = True
                relay.cancel()

        # A plain task, not a task group: this runs once per stream, on the hot path.
        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            if self.outcome.ttfb_ms is None:
                self.outcome.ttfb_ms = self.outcome.elapsed_ms()
            await self.stream_body(send)
            state["done"] = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not state["left"]:
                raise  # cancelled from outside (shutdown): not ours to swallow
            relay.uncancel()
            self._client_left()
        except OSError:
            if not state["done"]:
                self._client_left()
        finally:
            watcher.cancel()
            await asyncio.shield(self._close(streaming_since))

    async def _close(self, streaming_since: float) -> None:
        await self.close_upstream()
        self.outcome.upstream_ms += (time.perf_counter() - streaming_since) * 1000
        self.finish(self.outcome)

    def _client_left(self) -> None:
        self.outcome.status = 499  # nginx's "client closed request"
        self.outcome.error_type = "client_disconnect"

    async def stream_body(self, send: Send) -> None:
        raise NotImplementedError


class SSERelay(_Relay):
    def __init__(self, answer: StreamAnswer, outcome: Outcome, headers: dict[str, str],
                 finish: Finish, encoder: StreamEncoder) -> None:
        super().__init__(outcome, 200, headers, "text/event-stream", finish,
                         answer.response.aclose)
        self.answer = answer
        self.encoder = encoder

    async def stream_body(self, send: Send) -> None:
        answer = self.answer
        try:
            for chunk in answer.first:
                await self._emit(send, chunk)
            async for chunk in answer.rest:
                await self._emit(send, chunk)
        except GatewayError as exc:
            self.outcome.status = exc.status
            self.outcome.error_type = exc.type
            self.outcome.error_message = exc.message
            await send({"type": "http.response.body", "body": self.encoder.error(exc),
                        "more_body": True})
            return
        finally:
            if answer.state.usage:
                self.outcome.usage = answer.state.usage
        await send({"type": "http.response.body", "body": self.encoder.end(),
                    "more_body": True})

    async def _emit(self, send: Send, chunk: dict[str, Any]) -> None:
        if self.answer.strip_usage and not _keep_for_client(chunk):
            return
        self.outcome.completion.add(completion_text(chunk))
        body = self.encoder.chunk(chunk)
        if body:  # a translated stream's finish and usage chunks often send nothing yet
            await send({"type": "http.response.body", "body": body, "more_body": True})


def _keep_for_client(chunk: dict[str, Any]) -> bool:
    """Drop the usage the gateway asked for on the client's behalf."""
    if "usage" not in chunk:
        return True
    if not chunk.get("choices"):
        return False
    del chunk["usage"]
    return True


class RawRelay(_Relay):
    def __init__(self, answer: RawAnswer, outcome: Outcome, headers: dict[str, str],
                 finish: Finish) -> None:
        upstream = answer.response
        kept = {k: v for k, v in upstream.headers.items()
                if k in ("content-type", "content-disposition", "cache-control")}
        super().__init__(outcome, upstream.status_code, headers | kept, None, finish,
                         upstream.aclose)
        self.answer = answer

    async def stream_body(self, send: Send) -> None:
        upstream = self.answer.response
        try:
            with map_httpx_errors(self.outcome.answered_by or "upstream"):
                async for data in upstream.aiter_raw():
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        except GatewayError as exc:
            # Bytes already went out under the upstream's status; all that is left is to stop.
            self.outcome.error_type = exc.type
            self.outcome.error_message = exc.message


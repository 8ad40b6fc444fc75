"""A real OpenAI-compatible upstream for integration tests, with scripted faults.

The behaviour is chosen by the URL: a gateway target whose base URL is
`<mock>/s/<scenario>/v1` gets that scenario, so each target of a config can behave
differently. Scenarios (combine with `+`):

    ok                 normal answers (the default, also for plain `/v1`)
    status-<N>         answer status N with an OpenAI error body
    retry-after-<S>    with status-429: a Retry-After header of S seconds
    fail-first-<K>     the first K requests on this scenario path fail with status-<N> (or 500)
    hang               never answer (until the client gives up: counted in `abandoned`)
    reset              close the connection without answering
    slow-<MS>          wait MS milliseconds before answering (per stream chunk for streams;
                       before the error with status-<N>)
    error-event        a stream whose first event is an error
    drop-mid-stream    a stream that breaks after two chunks
    no-usage           no usage in the body or stream
    hold-usage         a stream that sends every content chunk, then holds the usage chunk
                       until the client leaves
    hold-done          a stream that sends everything but `[DONE]`, then holds it likewise
    hold-after-role    a chat stream that sends one role-only chunk (no text), then holds
    tool-calls         a chat answer (stream or not) that is a tool call (TOOL_CALL), not content
    tool-once          tool-calls until the conversation holds a tool result, then the answer
    reasoning          a chat stream whose deltas are `reasoning_content`, not content

`POST .../responses` answers as OpenAI's Responses API does (a Response object, or its event
stream), for requests the gateway sends natively.

Every request is recorded (`requests`), with the number in flight at once (`max_in_flight`),
and streams the client abandoned are counted in `cancelled_streams`, hanging requests the
client abandoned in `abandoned`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

STREAM_WORDS = ["Hello", " from", " the", " mock", " upstream", "."]
# The `tool-calls` stream: its function's name, then its arguments in pieces.
TOOL_CALL = ("get_weather", ['{"city": ', '"Paris", ', '"unit": "celsius"}'])


@dataclass
class Recorded:
    method: str
    path: str
    scenario: str
    headers: dict[str, str]
    body: Any
    query: str


@dataclass
class MockUpstream:
    requests: list[Recorded] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    cancelled_streams: int = 0
    abandoned: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.requests.clear()
        self.counters.clear()
        self.in_flight = self.max_in_flight = self.cancelled_streams = self.abandoned = 0

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/s/{scenario}/v1/{path:path}", self.handle,
                  methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            Route("/v1/{path:path}", self.handle,
                  methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ])

    async def handle(self, request: Request) -> Response:
        scenario = request.path_params.get("scenario", "ok")
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw
        self.requests.append(Recorded(request.method, request.path_params["path"], scenario,
                                      dict(request.headers), body, request.url.query))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, scenario, body)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: Request, scenario: str, body: Any) -> Response:
        flags = scenario.split("+")
        if "tool-once" in flags and not _has_tool_result(body):
            flags.append("tool-calls")
        count = self.counters[scenario] = self.counters.get(scenario, 0) + 1
        delay = _number(flags, "slow-") / 1000
        status = int(_number(flags, "status-") or 0)
        fail_first = int(_number(flags, "fail-first-"))
        if fail_first and count <= fail_first:
            status = status or 500
        elif fail_first:
            status = 0
        if "hang" in flags:
            # The body is read: the next message is the client's disconnect.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3600):
                    while (await request.receive())["type"] != "http.disconnect":
                        pass
                    self.abandoned += 1
            return Response(status_code=499)
        if "reset" in flags:
            raise ConnectionResetError("scripted reset")
        if status:
            if delay:
                await asyncio.sleep(delay)
            headers = {}
            if _number(flags, "retry-after-"):
                headers["retry-after"] = str(int(_number(flags, "retry-after-")))
            return JSONResponse({"error": {"message": f"scripted failure {status}",
                                           "type": "server_error", "param": None,
                                           "code": f"mock_{status}"}}, status, headers)
        path = request.path_params["path"]
        if delay and not (isinstance(body, dict) and body.get("stream")):
            await asyncio.sleep(delay)
        if path == "models":
            return JSONResponse({"object": "list", "data": [
                {"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}]})
        if path == "embeddings":
            return JSONResponse(_embeddings(body))
        if path == "responses" and isinstance(body, dict):
            response = _response_object(body)
            if body.get("stream"):
                return StreamingResponse(_response_events(response),
                                         media_type="text/event-stream")
            return JSONResponse(response)
        if path in ("chat/completions", "completions") and isinstance(body, dict):
            if body.get("stream"):
                return StreamingResponse(self._stream(path, body, flags, delay),
                                         media_type="text/event-stream")
            return JSONResponse(_completion(path, body, flags))
        return JSONResponse({"echo": {"method": request.method, "path": path, "body": body,
                                      "query": request.url.query}})

    async def _stream(self, path: str, body: dict[str, Any], flags: list[str],
                      delay: float):  # type: ignore[no-untyped-def]
        chat = path == "chat/completions"
        created = int(time.time())
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            if "error-event" in flags:
                yield _sse({"error": {"message": "scripted stream error", "type": "server_error",
                                      "code": "mock_stream_error"}})
                return
            if "hold-after-role" in flags:
                yield _sse({"id": "cmpl-mock", "object": "chat.completion.chunk",
                            "created": created, "model": body.get("model"), "choices": [
                                {"index": 0, "delta": {"role": "assistant", "content": ""},
                                 "finish_reason": None}]})
                await asyncio.sleep(3600)
            for i, word in enumerate(STREAM_WORDS):
                if delay:
                    await asyncio.sleep(delay)
                if "drop-mid-stream" in flags and i == 2:
                    raise ConnectionResetError("scripted drop")
                choice: dict[str, Any] = {"index": 0, "finish_reason": None, "logprobs": None}
                if chat:
                    choice["delta"] = _delta(i, word, flags)
                else:
                    choice["text"] = word
                chunk = {"id": "cmpl-mock", "object": "chat.completion.chunk" if chat
                         else "text_completion", "created": created, "model": body.get("model"),
                         "choices": [choice]}
                if include_usage:
                    chunk["usage"] = None
                yield _sse(chunk)
            last: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
            last["delta" if chat else "text"] = {} if chat else ""
            yield _sse({"id": "cmpl-mock", "object": "chat.completion.chunk" if chat
                        else "text_completion", "created": created, "model": body.get("model"),
                        "choices": [last]} | ({"usage": None} if include_usage else {}))
            if "hold-usage" in flags:
                await asyncio.sleep(3600)
            if include_usage and "no-usage" not in flags:
                yield _sse({"id": "cmpl-mock", "object": "chat.completion.chunk", "created":
                            created, "model": body.get("model"), "choices": [],
                            "usage": _usage(body, len(STREAM_WORDS))})
            if "hold-done" in flags:
                await asyncio.sleep(3600)
            yield b"data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.cancelled_streams += 1
            raise


def _delta(i: int, word: str, flags: list[str]) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant"} if i == 0 else {}
    if "tool-calls" in flags:
        name, arguments = TOOL_CALL
        call: dict[str, Any] = {"index": 0, "function": {
            "arguments": arguments[i] if i < len(arguments) else ""}}
        if i == 0:
            call |= {"id": "call_mock", "type": "function"}
            call["function"]["name"] = name
        return delta | {"content": None, "tool_calls": [call]}
    if "reasoning" in flags:
        return delta | {"content": "", "reasoning_content": word}
    return delta | {"content": word}


def _response_object(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's Response to a Responses request: the mock's words as one message."""
    text = "".join(STREAM_WORDS)
    prompt = len(str(body.get("input", "")).split())
    return {"id": f"resp_mock_{uuid.uuid4().hex}", "object": "response",
            "created_at": int(time.time()), "status": "completed", "model": body.get("model"),
            "store": body.get("store", True), "previous_response_id": None, "error": None,
            "incomplete_details": None, "instructions": body.get("instructions"),
            "metadata": {}, "parallel_tool_calls": True, "temperature": None, "top_p": None,
            "tool_choice": "auto", "tools": [], "output": [
                {"type": "message", "id": f"msg_mock_{uuid.uuid4().hex}", "role": "assistant",
                 "status": "completed",
                 "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": len(STREAM_WORDS),
                      "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": prompt + len(STREAM_WORDS)}}


async def _response_events(response: dict[str, Any]):  # type: ignore[no-untyped-def]
    item = response["output"][0]
    item_id, text = item["id"], item["content"][0]["text"]
    opened = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": opened},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**item, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", "item_id": item_id, "output_index": 0,
         "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}},
        *({"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
           "content_index": 0, "delta": word} for word in STREAM_WORDS),
        {"type": "response.output_text.done", "item_id": item_id, "output_index": 0,
         "content_index": 0, "text": text},
        {"type": "response.content_part.done", "item_id": item_id, "output_index": 0,
         "content_index": 0, "part": item["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": response},
    ]
    for number, event in enumerate(events):
        yield (f"event: {event['type']}\n".encode() +
               _sse({**event, "sequence_number": number}))


def _has_tool_result(body: Any) -> bool:
    messages = body.get("messages") if isinstance(body, dict) else None
    return any(isinstance(m, dict) and m.get("role") == "tool" for m in messages or ())


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def _number(flags: list[str], prefix: str) -> float:
    for flag in flags:
        if flag.startswith(prefix):
            return float(flag[len(prefix):])
    return 0.0


def prompt_tokens(body: dict[str, Any]) -> int:
    """A deterministic token count the tests can recompute: words in the prompt."""
    if "messages" in body:
        text = " ".join(str(m.get("content", "")) for m in body["messages"])
    else:
        text = str(body.get("prompt", body.get("input", "")))
    return len(text.split())


def _usage(body: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = prompt_tokens(body)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _completion(path: str, body: dict[str, Any], flags: list[str]) -> dict[str, Any]:
    text = "".join(STREAM_WORDS)
    n = int(body.get("n") or 1)
    if path == "chat/completions":
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if "tool-calls" in flags:
            name, arguments = TOOL_CALL
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_mock", "type": "function",
                 "function": {"name": name, "arguments": "".join(arguments)}}]}
        choices = [{"index": i, "message": message, "logprobs": None,
                    "finish_reason": "tool_calls" if "tool-calls" in flags else "stop"}
                   for i in range(n)]
        obj = "chat.completion"
    else:
        choices = [{"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
                   for i in range(n)]
        obj = "text_completion"
    result: dict[str, Any] = {"id": "cmpl-mock", "object": obj, "created": int(time.time()),
                              "model": body.get("model"), "choices": choices}
    if "no-usage" not in flags:
        result["usage"] = _usage(body, len(STREAM_WORDS) * n)
    return result


def _embeddings(body: Any) -> dict[str, Any]:
    inputs = body.get("input") if isinstance(body, dict) else None
    items = inputs if isinstance(inputs, list) else [inputs]
    return {"object": "list", "model": body.get("model") if isinstance(body, dict) else None,
            "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                     for i, _ in enumerate(items)],
            "usage": {"prompt_tokens": prompt_tokens({"input": " ".join(map(str, items))}),
                      "total_tokens": prompt_tokens({"input": " ".join(map(str, items))})}}

"""A canonical (Chat Completions) stream re-emitted as the Responses event sequence.

    response.created, response.in_progress                       at the first chunk
    response.output_item.added (reasoning | message | function_call), each at its own
        output_index (0, 1, 2 ... in the order items start)
    response.content_part.added, response.output_text.delta ..., .done, content_part.done
    response.reasoning_text.delta ..., .done                     (a chat `reasoning_content`)
    response.function_call_arguments.delta ..., .done            (with the item's own fc_ id)
    response.output_item.done                                    for every item, before the end
    response.completed | response.incomplete                     with the whole Response
    response.failed                                              instead, when the stream fails

Every event carries `sequence_number` (0, 1, 2 ...) and goes out with an `event:` line. Text
and reasoning items close when another item starts; function calls stay open to the end, so
the argument pieces of parallel calls may interleave. A chunk without `choices` carries usage
or the guardrails' `hook_results`; both go on the final Response (hook_results as an extra
top-level field), never as events of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.pipeline.dialects.responses_output import (
    ResponseBuilder,
    incomplete_reason,
    message_item,
    output_text_part,
    reasoning_item,
    response_usage,
)
from gateway.pipeline.dialects.responses_request import new_id

Finished = Callable[[dict[str, Any]], None]

# Error codes of the Response object's `error`, by HTTP status (others: server_error).
_ERROR_CODES = {429: "rate_limit_exceeded", 400: "invalid_prompt"}


class _Open:
    """A text or reasoning item being streamed: its index and the pieces so far."""

    __slots__ = ("index", "pieces")

    def __init__(self, index: int) -> None:
        self.index = index
        self.pieces: list[str] = []


class ResponsesStreamEncoder:
    def __init__(self, builder: ResponseBuilder, finished: Finished) -> None:
        self.builder = builder
        self.finished = finished
        self.sequence = 0
        self.started = False
        self.model: str | None = None
        self.items: list[dict[str, Any]] = []
        self.text: _Open | None = None  # the message or reasoning item streaming now
        self.calls: dict[int, int] = {}  # chat tool-call index -> output index
        self.arguments: dict[int, list[str]] = {}  # output index -> argument pieces
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        if not self.started:
            model = chunk.get("model")
            self.model = model if isinstance(model, str) and model else None
            self._start(out)
        if "hook_results" in chunk:
            self.extra["hook_results"] = chunk["hook_results"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # Responses has one answer; `n` is never asked for
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._stream_text(out, "reasoning", reasoning)
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._stream_text(out, "message", content)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._stream_call(out, call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return b"".join(out)

    def end(self) -> bytes:
        out: list[bytes] = []
        if not self.started:
            self._start(out)
        reason = incomplete_reason(self.finish)
        self._close_all(out, "incomplete" if reason else "completed")
        status = "incomplete" if reason else "completed"
        response = self.builder.response(
            status=status, output=self.items, model=self.model, incomplete=reason,
            usage=response_usage(self.usage), extra=self.extra)
        self.finished(response)
        out.append(self._event(f"response.{status}", response=response))
        return b"".join(out)

    def error(self, exc: GatewayError) -> bytes:
        if not self.started:
            # Nothing of this stream went out (or it was a native target's own, whose
            # response this encoder never saw): OpenAI's plain error event.
            return self._event("error", code=exc.code or _ERROR_CODES.get(
                exc.status, "server_error"), message=exc.message, param=exc.param)
        out: list[bytes] = []
        self._close_all(out, "incomplete")
        error = {"code": exc.code or _ERROR_CODES.get(exc.status, "server_error"),
                 "message": exc.message}
        response = self.builder.response(status="failed", output=self.items, model=self.model,
                                         usage=response_usage(self.usage), error=error,
                                         extra=self.extra)
        self.finished(response)
        out.append(self._event("response.failed", response=response))
        return b"".join(out)

    # --- items ---------------------------------------------------------------------------

    def _start(self, out: list[bytes]) -> None:
        self.started = True
        snapshot = self.builder.response(status="in_progress", output=[], model=self.model)
        out.append(self._event("response.created", response=snapshot))
        out.append(self._event("response.in_progress", response=snapshot))

    def _stream_text(self, out: list[bytes], kind: str, piece: str) -> None:
        current = self.text
        if current is None or self.items[current.index]["type"] != kind:
            self._close_text(out, "completed")
            current = self.text = self._add_text(out, kind)
        current.pieces.append(piece)
        item_id = self.items[current.index]["id"]
        name = "output_text" if kind == "message" else "reasoning_text"
        fields: dict[str, Any] = {"item_id": item_id, "output_index": current.index,
                                  "content_index": 0, "delta": piece}
        if kind == "message":
            fields["logprobs"] = []
        out.append(self._event(f"response.{name}.delta", **fields))

    def _add_text(self, out: list[bytes], kind: str) -> _Open:
        index = len(self.items)
        if kind == "message":
            item = {"type": "message", "id": new_id("msg"), "role": "assistant",
                    "status": "in_progress", "content": []}
            part = output_text_part("")
        else:
            item = {"type": "reasoning", "id": new_id("rs"), "summary": [], "content": [],
                    "status": "in_progress"}
            part = {"type": "reasoning_text", "text": ""}
        self.items.append(item)
        out.append(self._event("response.output_item.added", output_index=index,
                               item=dict(item, content=[])))
        out.append(self._event("response.content_part.added", item_id=item["id"],
                               output_index=index, content_index=0, part=part))
        return _Open(index)

    def _close_text(self, out: list[bytes], status: str) -> None:
        current, self.text = self.text, None
        if current is None:
            return
        index, text = current.index, "".join(current.pieces)
        item = self.items[index]
        fields = {"item_id": item["id"], "output_index": index, "content_index": 0}
        if item["type"] == "message":
            done = message_item(item["id"], text, status)
            out.append(self._event("response.output_text.done", text=text, logprobs=[],
                                   **fields))
        else:
            done = reasoning_item(item["id"], text)
            done["status"] = status
            out.append(self._event("response.reasoning_text.done", text=text, **fields))
        out.append(self._event("response.content_part.done", part=done["content"][0],
                               **fields))
        self.items[index] = done
        out.append(self._event("response.output_item.done", output_index=index, item=done))

    def _stream_call(self, out: list[bytes], call: dict[str, Any]) -> None:
        position = call.get("index", 0)
        function = call.get("function") or {}
        index = self.calls.get(position)
        if index is None:
            self._close_text(out, "completed")
            index = self.calls[position] = len(self.items)
            name = function.get("name") or ""
            item = self.builder.function_call_item(
                new_id("fc"), call.get("id") or new_id("call"), name, "", "in_progress")
            self.items.append(item)
            self.arguments[index] = []
            out.append(self._event("response.output_item.added", output_index=index,
                                   item=dict(item)))
        elif function.get("name") and not self.items[index]["name"]:
            self.items[index]["name"] = function["name"]
        piece = function.get("arguments")
        if isinstance(piece, str) and piece:
            self.arguments[index].append(piece)
            out.append(self._event("response.function_call_arguments.delta",
                                   item_id=self.items[index]["id"], output_index=index,
                                   delta=piece))

    def _close_all(self, out: list[bytes], status: str) -> None:
        self._close_text(out, status)
        for index in sorted(self.calls.values()):
            item = self.items[index]
            arguments = "".join(self.arguments[index])
            out.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                   output_index=index, name=item["name"],
                                   arguments=arguments))
            done = dict(item, arguments=arguments, status=status)
            self.items[index] = done
            out.append(self._event("response.output_item.done", output_index=index, item=done))
        self.calls.clear()

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = orjson.dumps({"type": kind, "sequence_number": self.sequence, **fields})
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

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


def _head(kind: str) -> bytes:
    """An event's bytes up to its sequence number."""
    name = kind.encode()
    return b'event: %b\ndata: {"type":"%b","sequence_number":' % (name, name)


# Every event this encoder sends, its head encoded once (a stream sends 15 or more).
_HEADS = {kind: _head(kind) for kind in (
    "response.created", "response.in_progress", "response.output_item.added",
    "response.content_part.added", "response.output_text.delta", "response.output_text.done",
    "response.reasoning_text.delta", "response.reasoning_text.done",
    "response.content_part.done", "response.output_item.done",
    "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.completed", "response.incomplete", "response.failed", "error")}
# What follows the piece in each kind of item's delta event.
_DELTA_EVENTS = {"message": ("response.output_text.delta", b',"logprobs":[]}\n\n'),
                 "reasoning": ("response.reasoning_text.delta", b"}\n\n"),
                 "function_call": ("response.function_call_arguments.delta", b"}\n\n")}


class _Open:
    """An item being streamed: its index, its pieces so far, and its delta event's bytes
    around the sequence number and the piece, which every delta of the item shares (deltas
    are most of a stream's events: each is a few byte joins, not a dict and its JSON)."""

    __slots__ = ("kind", "index", "pieces", "head", "middle", "tail")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind
        self.index = index
        self.pieces: list[str] = []
        event, self.tail = _DELTA_EVENTS[kind]
        self.head = _HEADS[event]
        where = b',"item_id":%b,"output_index":%d' % (orjson.dumps(item_id), index)
        self.middle = where + (b',"delta":' if kind == "function_call"
                               else b',"content_index":0,"delta":')


class ResponsesStreamEncoder:
    def __init__(self, builder: ResponseBuilder, finished: Finished) -> None:
        self.builder = builder
        self.finished = finished
        self.sequence = 0
        self.started = False
        self.model: str | None = None
        self.items: list[dict[str, Any]] = []
        self.text: _Open | None = None  # the message or reasoning item streaming now
        self.calls: dict[int, _Open] = {}  # chat tool-call index -> its function_call item
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
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
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
        out.append(self._response_event(f"response.{status}", orjson.dumps(response)))
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
        out.append(self._response_event("response.failed", orjson.dumps(response)))
        return b"".join(out)

    # --- items ---------------------------------------------------------------------------

    def _start(self, out: list[bytes]) -> None:
        self.started = True
        snapshot = orjson.dumps(
            self.builder.response(status="in_progress", output=[], model=self.model))
        out.append(self._response_event("response.created", snapshot))
        out.append(self._response_event("response.in_progress", snapshot))

    def _stream_text(self, out: list[bytes], kind: str, piece: str) -> None:
        current = self.text
        if current is None or current.kind != kind:
            self._close_text(out, "completed")
            current = self.text = self._add_text(out, kind)
        out.append(self._delta(current, piece))

    def _add_text(self, out: list[bytes], kind: str) -> _Open:
        index = len(self.items)
        item: dict[str, Any]
        if kind == "message":
            item = {"type": "message", "id": new_id("msg"), "role": "assistant",
                    "status": "in_progress", "content": []}
            part = output_text_part("")
        else:
            item = {"type": "reasoning", "id": new_id("rs"), "summary": [], "content": [],
                    "status": "in_progress"}
            part = {"type": "reasoning_text", "text": ""}
        self.items.append(item)
        # Events are encoded as they are made: the items they show need no copies.
        out.append(self._event("response.output_item.added", output_index=index, item=item))
        out.append(self._event("response.content_part.added", item_id=item["id"],
                               output_index=index, content_index=0, part=part))
        return _Open(kind, index, item["id"])

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
        current = self.calls.get(position)
        if current is None:
            self._close_text(out, "completed")
            index = len(self.items)
            name = function.get("name") or ""
            item = self.builder.function_call_item(
                new_id("fc"), call.get("id") or new_id("call"), name, "", "in_progress")
            self.items.append(item)
            current = self.calls[position] = _Open("function_call", index, item["id"])
            out.append(self._event("response.output_item.added", output_index=index,
                                   item=item))
        elif function.get("name") and not self.items[current.index]["name"]:
            self.items[current.index]["name"] = function["name"]
        piece = function.get("arguments")
        if isinstance(piece, str) and piece:
            out.append(self._delta(current, piece))

    def _close_all(self, out: list[bytes], status: str) -> None:
        self._close_text(out, status)
        for current in self.calls.values():  # in output order: each call adds one item
            index = current.index
            item = self.items[index]
            arguments = "".join(current.pieces)
            out.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                   output_index=index, name=item["name"],
                                   arguments=arguments))
            done = dict(item, arguments=arguments, status=status)
            self.items[index] = done
            out.append(self._event("response.output_item.done", output_index=index, item=done))
        self.calls.clear()

    # --- encoding ------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> bytes:
        """`kind`'s event: its type and sequence number, then `fields` (never none)."""
        sequence = self.sequence
        self.sequence = sequence + 1
        return b"%b%d,%b\n\n" % (_HEADS[kind], sequence, orjson.dumps(fields)[1:])

    def _response_event(self, kind: str, response: bytes) -> bytes:
        """An event carrying the Response object, given as its JSON."""
        sequence = self.sequence
        self.sequence = sequence + 1
        return b'%b%d,"response":%b}\n\n' % (_HEADS[kind], sequence, response)

    def _delta(self, current: _Open, piece: str) -> bytes:
        """A delta event of `current`'s item: its bytes, with the piece JSON-escaped."""
        current.pieces.append(piece)
        sequence = self.sequence
        self.sequence = sequence + 1
        return b"%b%d%b%b%b" % (current.head, sequence, current.middle, orjson.dumps(piece),
                                current.tail)

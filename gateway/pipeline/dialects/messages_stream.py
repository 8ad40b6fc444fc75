"""Canonical (Chat Completions) answers, streams and errors as Anthropic's Messages API.

A stream is re-emitted as Anthropic's exact event sequence: `message_start`, then for each
content block `content_block_start` / `content_block_delta`s / `content_block_stop` (one
block open at a time, indexes 0, 1, 2... in the order they open; tool arguments as
`input_json_delta`), then `message_delta` (stop_reason and the cumulative usage) and
`message_stop`; each with its `event:` line (the SDKs dispatch on it). The stop is held
until the usage chunk that follows a finish_reason; chunks after `message_stop` are dropped.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.contracts.request import ParsedRequest
from gateway.errors import GatewayError
from gateway.usage.tokens import from_usage

# finish_reason -> stop_reason; anything else (or none) is end_turn.
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}
# Anthropic's error type per HTTP status; other 4xx are invalid_request_error, 5xx api_error.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 408: "timeout_error",
               413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               504: "timeout_error", 529: "overloaded_error"}
_KNOWN_TYPES = frozenset(ERROR_TYPES.values())


def message_id(request: ParsedRequest) -> str:
    """One id per request, in Anthropic's form; the usage row's id is the same uuid."""
    return "msg_" + request.request_id.replace("-", "")


def error_type(exc: GatewayError) -> str:
    if exc.type in _KNOWN_TYPES:  # an Anthropic upstream's own type, kept
        return exc.type
    if exc.status in ERROR_TYPES:
        return ERROR_TYPES[exc.status]
    return "api_error" if exc.status >= 500 else "invalid_request_error"


def error_object(exc: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(exc), "message": exc.message}}


def error_json(exc: GatewayError) -> bytes:
    return orjson.dumps(error_object(exc))


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(exc: GatewayError) -> bytes:
    return event("error", error_object(exc))


def anthropic_usage(usage: Any) -> dict[str, int]:
    """OpenAI usage as Anthropic's: `input_tokens` excludes cache reads and writes."""
    tokens = from_usage(usage) if isinstance(usage, dict) else None
    if tokens is None:
        return {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0}
    details = usage.get("prompt_tokens_details")
    written = usage.get("cache_creation_input_tokens")
    if written is None and isinstance(details, dict):
        written = details.get("cache_creation_tokens") or details.get("cache_write_tokens")
    written = written if type(written) is int and written >= 0 else 0
    return {"input_tokens": max(tokens.prompt - tokens.cached - written, 0),
            "output_tokens": tokens.completion, "cache_creation_input_tokens": written,
            "cache_read_input_tokens": tokens.cached}


def stop_reason(finish: Any, called_tools: bool) -> str:
    if called_tools and finish in ("stop", None):
        return "tool_use"  # some servers finish a tool call with "stop"
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def message_of(body: dict[str, Any], request: ParsedRequest) -> dict[str, Any]:
    """A chat.completion as a Message (its first choice: Messages has no `n`)."""
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = _text(message.get("content")) or _text(message.get("refusal"))
    if text:
        content.append({"type": "text", "text": text})
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or f"toolu_{i}",
                        "name": function.get("name") or "",
                        "input": _arguments(function.get("arguments"))})
    result = {"id": message_id(request), "type": "message", "role": "assistant",
              "model": body.get("model") or (request.body or {}).get("model"),
              "content": content, "stop_reason": stop_reason(choice.get("finish_reason"),
                                                             bool(calls)),
              "stop_sequence": None, "usage": anthropic_usage(body.get("usage"))}
    if "hook_results" in body:
        result["hook_results"] = body["hook_results"]
    return result


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _arguments(arguments: Any) -> dict[str, Any]:
    """Tool input is an object; arguments that do not parse to one are an empty input."""
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class MessagesStreamEncoder:
    """Chat chunks in, Anthropic events out; one per stream (it keeps the block state)."""

    def __init__(self, request: ParsedRequest) -> None:
        self.request = request
        self.started = False
        self.finished = False
        self.open: str | None = None  # the open block's kind: text, thinking or tool_use
        self.index = -1  # the open (or last) block's index
        self.tool: tuple[int, str] | None = None  # the open tool block's (chat index, id)
        self.called_tools = False
        self.stop: str | None = None  # held until the usage arrives
        self.usage: Any = None

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if "hook_results" in chunk and "choices" not in chunk:
            return event("hook_results", chunk)  # unknown to the SDKs, which skip it
        if self.finished:
            return b""
        out: list[bytes] = []
        if not self.started:
            out.append(self._start(chunk.get("model")))
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            if choice.get("finish_reason"):
                self._close(out)
                self.stop = stop_reason(choice["finish_reason"], self.called_tools)
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
            if self.stop is not None:
                out.append(self._finish())
        return b"".join(out)

    def error(self, exc: GatewayError) -> bytes:
        return error_event(exc)

    def end(self) -> bytes:
        if self.finished:
            return b""
        out = [] if self.started else [self._start(None)]
        self._close(out)
        out.append(self._finish())
        return b"".join(out)

    def _start(self, model: Any) -> bytes:
        self.started = True
        return event("message_start", {"type": "message_start", "message": {
            "id": message_id(self.request), "type": "message", "role": "assistant",
            "model": model or (self.request.body or {}).get("model"), "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": anthropic_usage(None)}})

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        """One chunk's delta, split by kind in Anthropic's order: thinking, text, tools."""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            out.append(self._block_delta({"type": "thinking_delta", "thinking": reasoning}))
        text = delta.get("content") or delta.get("refusal")
        if isinstance(text, str) and text:
            self._open("text", {"type": "text", "text": ""}, out)
            out.append(self._block_delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._tool_call(call, out)

    def _tool_call(self, call: dict[str, Any], out: list[bytes]) -> None:
        position = call.get("index", 0)
        function = found if isinstance(found := call.get("function"), dict) else {}
        new_id = call.get("id")
        if self.tool is None or self.tool[0] != position or (new_id and new_id != self.tool[1]):
            call_id = new_id or f"toolu_{self.request.request_id.replace('-', '')}_{position}"
            self._open("tool_use", {"type": "tool_use", "id": call_id,
                                    "name": function.get("name") or "", "input": {}}, out)
            self.tool = (position, call_id)
            self.called_tools = True
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(self._block_delta({"type": "input_json_delta",
                                          "partial_json": arguments}))

    def _open(self, kind: str, block: dict[str, Any], out: list[bytes]) -> None:
        if self.open == kind and kind != "tool_use":
            return
        self._close(out)
        self.index += 1
        self.open = kind
        out.append(event("content_block_start", {"type": "content_block_start",
                                                 "index": self.index, "content_block": block}))

    def _close(self, out: list[bytes]) -> None:
        if self.open is None:
            return
        out.append(event("content_block_stop", {"type": "content_block_stop",
                                                "index": self.index}))
        self.open = None
        self.tool = None

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", {"type": "content_block_delta",
                                             "index": self.index, "delta": delta})

    def _finish(self) -> bytes:
        self.finished = True
        reason = self.stop or stop_reason(None, self.called_tools)
        return event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": anthropic_usage(self.usage)}) + event("message_stop",
                                                           {"type": "message_stop"})

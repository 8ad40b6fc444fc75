"""What the pipeline reads in native Messages answers (from Anthropic, or Claude on Vertex):
usage for billing, error events, the end of a stream, and the whole message for the cache;
and `count_tokens` estimated locally for targets that have no such endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from gateway.usage.tokens import count
from providers.anthropic import ERROR_STATUS, usage_of
from providers.base import ProviderError, StreamError

COUNT_TOKENS = "messages/count_tokens"
_NOTHING_BILLED = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


class MessagesNative:
    name = "messages"
    headers: tuple[str, ...] = ("anthropic-version", "anthropic-beta")

    def usage(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if path == COUNT_TOKENS:
            return dict(_NOTHING_BILLED)  # counting is free: input_tokens is no usage
        raw = body.get("usage")
        return usage_of(raw) if isinstance(raw, dict) else None

    def stream(self, path: str) -> MessageWatcher:
        return MessageWatcher()

    def replay(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return replay_message(body)

    async def local_answer(self, path: str, body: dict[str, Any]) -> bytes | None:
        if path != COUNT_TOKENS:
            return None
        # tiktoken is CPU work: off the event loop, as the usage log's estimates are.
        tokens = await asyncio.get_running_loop().run_in_executor(None, count_prompt, body)
        return orjson.dumps({"input_tokens": tokens})


MESSAGES_NATIVE = MessagesNative()


def count_prompt(body: dict[str, Any]) -> int:
    """An estimate of a canonical body's input tokens: its messages' text, tool calls and
    tool definitions (cl100k, the usage log's counter; Claude's own tokenizer differs)."""
    parts: list[str] = []
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p["text"] for p in content if isinstance(p.get("text"), str)]
        for call in message.get("tool_calls") or ():
            parts.append(orjson.dumps(call.get("function")).decode())
    if body.get("tools"):
        parts.append(orjson.dumps(body["tools"]).decode())
    return count("\n".join(parts))


class MessageWatcher:
    """One native stream: its usage so far, its end, and the Message it adds up to."""

    def __init__(self) -> None:
        self.counts: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None
        self.message: dict[str, Any] | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.json: dict[int, list[str]] = {}  # tool input fragments by block index
        self.stopped = False

    def event(self, event: dict[str, Any]) -> str:
        kind = event.get("type")
        if kind == "error":
            error = found if isinstance(found := event.get("error"), dict) else {}
            raise StreamError(ProviderError(ERROR_STATUS.get(str(error.get("type")), 500),
                                            str(error.get("message") or "stream error"),
                                            error.get("type")))
        if kind == "message_start" and isinstance(event.get("message"), dict):
            self.message = dict(event["message"])
            # Counts so far (input tokens, output_tokens 1): not the stream's usage until
            # message_delta brings the final ones; a stream cut before that is estimated from
            # what was relayed, as a chat stream is.
            self._count(self.message.get("usage"), final=False)
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            self.blocks[int(event.get("index", len(self.blocks)))] = dict(event["content_block"])
        elif kind == "content_block_delta":
            return self._delta(event)
        elif kind == "message_delta":
            self._count(event.get("usage"), final=True)
            if self.message is not None and isinstance(event.get("delta"), dict):
                self.message.update(event["delta"])
        elif kind == "message_stop":
            self.stopped = True
        return ""

    def end(self) -> None:
        if not self.stopped:
            raise StreamError(ProviderError(502, "the stream ended before message_stop",
                                            "upstream_error", code="stream_truncated"))

    def result(self) -> dict[str, Any] | None:
        if not self.stopped or self.message is None:
            return None
        blocks = []
        for index in sorted(self.blocks):
            block = self.blocks[index]
            if index in self.json:
                text = "".join(self.json[index])
                try:
                    block["input"] = orjson.loads(text) if text else {}
                except orjson.JSONDecodeError:
                    return None  # a tool input that is not JSON: nothing to keep or replay
            blocks.append(block)
        usage = dict(self.message.get("usage") or {}) | self.counts
        return self.message | {"content": blocks, "usage": usage}

    def _count(self, usage: Any, *, final: bool) -> None:
        if isinstance(usage, dict):  # cumulative counts; a null keeps the earlier one
            self.counts.update((k, v) for k, v in usage.items() if v is not None)
            if final:
                self.usage = usage_of(self.counts)

    def _delta(self, event: dict[str, Any]) -> str:
        delta = found if isinstance(found := event.get("delta"), dict) else {}
        block = self.blocks.get(int(event.get("index", -1)))
        kind = delta.get("type")
        for name, field in (("text_delta", "text"), ("thinking_delta", "thinking"),
                            ("signature_delta", "signature")):
            if kind == name and isinstance(delta.get(field), str):
                if block is not None:
                    block[field] = block.get(field, "") + delta[field]
                return "" if field == "signature" else str(delta[field])
        if kind == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            self.json.setdefault(int(event.get("index", -1)), []).append(delta["partial_json"])
            return str(delta["partial_json"])
        return ""


def replay_message(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events Anthropic would have streamed for this whole Message."""
    usage = dict(message.get("usage") or {})
    start = message | {"content": [], "stop_reason": None, "stop_sequence": None,
                       "usage": usage | {"output_tokens": 0}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message.get("content") or ()):
        kind = block.get("type")
        empty, deltas = _split_block(block)
        events.append({"type": "content_block_start", "index": index,
                       "content_block": empty if kind in ("text", "thinking", "tool_use")
                       else block})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {
        "stop_reason": message.get("stop_reason"), "stop_sequence": message.get(
            "stop_sequence")}, "usage": usage})
    events.append({"type": "message_stop"})
    return events


def _split_block(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kind = block.get("type")
    if kind == "text":
        return block | {"text": ""}, [{"type": "text_delta", "text": block.get("text", "")}]
    if kind == "thinking":
        return block | {"thinking": "", "signature": ""}, [
            {"type": "thinking_delta", "thinking": block.get("thinking", "")},
            {"type": "signature_delta", "signature": block.get("signature", "")}]
    if kind == "tool_use":
        return block | {"input": {}}, [{"type": "input_json_delta", "partial_json":
                                        orjson.dumps(block.get("input") or {}).decode()}]
    return block, []

"""Between whole responses and streams: replay a cached completion as chunks, and assemble a
finished stream into the completion it stands for. Pure functions, no I/O."""

from __future__ import annotations

from typing import Any

CHAT_CHUNK = "chat.completion.chunk"


def completion_to_chunks(body: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The chunks a stream of this chat.completion or text_completion would have sent."""
    chat = body.get("object") == "chat.completion"
    head = {"id": body.get("id"), "object": CHAT_CHUNK if chat else "text_completion",
            "created": body.get("created"), "model": body.get("model")}
    if body.get("system_fingerprint"):
        head["system_fingerprint"] = body["system_fingerprint"]
    content: list[dict[str, Any]] = []
    finish: list[dict[str, Any]] = []
    for position, choice in enumerate(body.get("choices") or []):
        index = choice.get("index", position)
        if chat:
            delta = _delta(choice.get("message") or {})
            content.append({"index": index, "delta": delta, "logprobs": None,
                            "finish_reason": None})
            finish.append({"index": index, "delta": {}, "logprobs": None,
                           "finish_reason": choice.get("finish_reason")})
        else:
            content.append({"index": index, "text": choice.get("text") or "", "logprobs": None,
                            "finish_reason": None})
            finish.append({"index": index, "text": "", "logprobs": None,
                           "finish_reason": choice.get("finish_reason")})
    chunks = [head | {"choices": [choice]} for choice in content]
    chunks += [head | {"choices": [choice]} for choice in finish]
    if include_usage and body.get("usage"):
        chunks.append(head | {"choices": [], "usage": body["usage"]})
    return chunks


def _delta(message: dict[str, Any]) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": message.get("role") or "assistant",
                             "content": message.get("content")}
    if message.get("refusal"):
        delta["refusal"] = message["refusal"]
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call}
                               for i, call in enumerate(message["tool_calls"])]
    return delta


class StreamAssembler:
    """Collects a stream's chunks into the whole response; `result()` is None if it cannot."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.chat = True
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None
        self.broken = False

    def feed(self, chunk: dict[str, Any]) -> None:
        kind = chunk.get("object")
        if kind not in (CHAT_CHUNK, "text_completion"):
            self.broken = True
            return
        self.chat = kind == CHAT_CHUNK
        for name in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(name) is not None:
                self.head.setdefault(name, chunk[name])
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            self._choice(choice)

    def _choice(self, piece: dict[str, Any]) -> None:
        index = int(piece.get("index") or 0)
        choice = self.choices.setdefault(index, {"index": index, "finish_reason": None,
                                                 "parts": [], "tools": {}, "role": None})
        if piece.get("finish_reason"):
            choice["finish_reason"] = piece["finish_reason"]
        if not self.chat:
            choice["parts"].append(piece.get("text") or "")
            return
        delta = piece.get("delta") or {}
        choice["role"] = choice["role"] or delta.get("role")
        if delta.get("content"):
            choice["parts"].append(delta["content"])
        for call in delta.get("tool_calls") or []:
            _merge_tool_call(choice["tools"], call)

    def result(self) -> dict[str, Any] | None:
        if self.broken or not self.choices:
            return None
        choices = [self._whole(choice) for _, choice in sorted(self.choices.items())]
        body: dict[str, Any] = {"id": self.head.get("id"),
                                "object": "chat.completion" if self.chat else "text_completion",
                                "created": self.head.get("created"),
                                "model": self.head.get("model"), "choices": choices}
        if self.head.get("system_fingerprint"):
            body["system_fingerprint"] = self.head["system_fingerprint"]
        if self.usage is not None:
            body["usage"] = self.usage
        return body

    def _whole(self, choice: dict[str, Any]) -> dict[str, Any]:
        text = "".join(choice["parts"])
        whole: dict[str, Any] = {"index": choice["index"], "logprobs": None,
                                 "finish_reason": choice["finish_reason"]}
        if not self.chat:
            return whole | {"text": text}
        message: dict[str, Any] = {"role": choice["role"] or "assistant",
                                   "content": text if text or not choice["tools"] else None}
        if choice["tools"]:
            message["tool_calls"] = [choice["tools"][i] for i in sorted(choice["tools"])]
        return whole | {"message": message}


def _merge_tool_call(tools: dict[int, dict[str, Any]], piece: dict[str, Any]) -> None:
    """Tool calls stream as fragments keyed by index: the first names it, the rest add args."""
    index = int(piece.get("index") or 0)
    call = tools.setdefault(index, {"id": None, "type": "function",
                                    "function": {"name": "", "arguments": ""}})
    if piece.get("id"):
        call["id"] = piece["id"]
    if piece.get("type"):
        call["type"] = piece["type"]
    function = piece.get("function") or {}
    if function.get("name"):
        call["function"]["name"] += function["name"]
    if function.get("arguments"):
        call["function"]["arguments"] += function["arguments"]

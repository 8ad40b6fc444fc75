"""The Response object and its output items, built from canonical (Chat Completions) answers.

Ids are minted here, once: `resp_` for the response (decided before the first stream event),
`msg_`, `fc_` and `rs_` for its items; the upstream's `chatcmpl-...` id never leaks into them.
A tool call keeps the upstream's id as its `call_id` (what `function_call_output` answers).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gateway.pipeline.dialects.responses_request import ResponsesRequest, new_id

# finish_reason -> the Response's incomplete_details.reason
_INCOMPLETE = {"length": "max_output_tokens", "max_tokens": "max_output_tokens",
               "content_filter": "content_filter"}


class ResponseBuilder:
    """One response's id, creation time and echoed request fields."""

    __slots__ = ("id", "created_at", "request", "echo")

    def __init__(self, request: ResponsesRequest, response_id: str) -> None:
        self.id = response_id
        self.created_at = int(time.time())
        self.request = request
        self.echo = request.echo

    def sent_max_tokens(self, clamped: int | None) -> None:
        """Report `max_output_tokens` as the target was sent it when the gateway's clamp
        lowered the client's value (output_limits.py); else as the client asked."""
        self.echo = self.request.echo if clamped is None else {
            **self.request.echo, "max_output_tokens": clamped}

    def response(self, *, status: str, output: list[dict[str, Any]], model: str | None,
                 usage: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
                 incomplete: str | None = None, extra: Mapping[str, Any] | None = None,
                 ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": status, "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            **self.echo, "model": model or self.echo["model"],
            "output": output, "usage": usage,
        }
        if output:
            body["output_text"] = output_text(output)  # the SDKs' convenience, harmless
        if extra:
            body.update(extra)
        return body

    def completion_output(self, message: Mapping[str, Any],
                          finish: str | None) -> list[dict[str, Any]]:
        """The output items of one chat answer: reasoning, the message, then its calls."""
        status = "incomplete" if finish in _INCOMPLETE else "completed"
        items: list[dict[str, Any]] = []
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            items.append(reasoning_item(new_id("rs"), reasoning))
        content = message.get("content")
        text = content if isinstance(content, str) else "".join(
            p.get("text") or "" for p in content or () if isinstance(p, dict))
        calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
        refusal = message.get("refusal")
        if text or refusal or not calls:
            items.append(message_item(new_id("msg"), text, status, refusal))
        for call in calls:
            function = call.get("function") or {}
            items.append(self.function_call_item(
                new_id("fc"), call.get("id") or new_id("call"), function.get("name") or "",
                function.get("arguments") or "", "completed"))
        return items

    def function_call_item(self, item_id: str, call_id: str, name: str, arguments: str,
                           status: str) -> dict[str, Any]:
        item = {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
                "arguments": arguments, "status": status}
        namespace = self.request.namespaces.get(name)
        if namespace:
            item["namespace"] = namespace
        return item


def message_item(item_id: str, text: str, status: str,
                 refusal: str | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [output_text_part(text)]
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": item_id, "role": "assistant", "status": status,
            "content": content}


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    """A chat answer's reasoning (raw, not a summary) as `reasoning_text` content."""
    return {"type": "reasoning", "id": item_id, "summary": [],
            "content": [{"type": "reasoning_text", "text": text}]}


def output_text(output: list[dict[str, Any]]) -> str:
    return "".join(part.get("text") or "" for item in output if item["type"] == "message"
                   for part in item["content"] if part["type"] == "output_text")


def incomplete_reason(finish: str | None) -> str | None:
    return _INCOMPLETE.get(finish or "")


def response_usage(usage: Any) -> dict[str, Any] | None:
    """Chat usage as Responses usage; input_tokens include the cached ones (both APIs')."""
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    details = prompt_details if isinstance(prompt_details, dict) else {}
    cached = _count(details.get("cached_tokens"))
    # Cache writes: the gateway's Anthropic-family usage, or OpenAI's newer detail.
    written = _count(usage.get("cache_creation_input_tokens")) or _count(
        details.get("cache_write_tokens"))
    reasoning = _count(completion_details.get("reasoning_tokens")) if isinstance(
        completion_details, dict) else 0
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + completion}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

"""Cohere's v2 Chat and Embed APIs behind OpenAI's chat completions and embeddings.

Reference: https://docs.cohere.com/reference/chat, .../chat-stream and .../embed.
v2 messages and tools are close to OpenAI's: roles, `tool_calls` and `tool_call_id` keep
their shape; sampling fields are renamed (`top_p` -> `p`) and stops listified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers import openai_shapes as shapes
from providers.base import (
    ConfigurationError,
    Endpoint,
    NoNativeDialects,
    Param,
    ProviderError,
    SSEEvent,
    StreamError,
    StreamFormat,
    StreamState,
    Target,
    UpstreamRequest,
)
from providers.table import apply, as_list

BASE_URL = "https://api.cohere.com"

PARAMS: dict[str, Param] = {
    "model": Param("model"),
    "messages": Param("messages", transform=lambda m: messages(m)),
    "max_tokens": Param("max_tokens"),
    "max_completion_tokens": Param("max_tokens"),
    "stop": Param("stop_sequences", transform=as_list),
    "temperature": Param("temperature"),
    "top_p": Param("p"),
    "seed": Param("seed"),
    "frequency_penalty": Param("frequency_penalty"),
    "presence_penalty": Param("presence_penalty"),
    "tools": Param("tools", transform=lambda t: tools(t)),
    "tool_choice": Param("tool_choice", transform=lambda c: tool_choice(c)),
    "response_format": Param("response_format", transform=lambda f: response_format(f)),
    "stream": Param("stream"),
}
NATIVE: dict[str, Param] = {
    "top_k": Param("k"),
    "documents": Param("documents"),
    "citation_options": Param("citation_options"),
    "safety_mode": Param("safety_mode"),
}
EMBED_PARAMS: dict[str, Param] = {
    "model": Param("model"),
    "input": Param("texts", transform=lambda i: shapes.embedding_inputs({"input": i})),
    "dimensions": Param("output_dimension"),
}
EMBED_NATIVE: dict[str, Param] = {
    "input_type": Param("input_type", default="search_document"),
    "truncate": Param("truncate"),
}

FINISH_REASONS = {
    "COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls", "TIMEOUT": "length",
}


def messages(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for message in value:
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            raise ConfigurationError(f"unknown message role '{role}'")
        turn: dict[str, Any] = {"role": role}
        content = message.get("content")
        if content is not None:
            turn["content"] = content if isinstance(content, str) else [
                _part(p) for p in shapes.parts_of(content)]
        calls = message.get("tool_calls")
        if calls:
            if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
                raise ConfigurationError("'tool_calls' must be a list of tool calls")
            for call in calls:
                shapes.arguments(call)  # refuses arguments that are not a JSON object
            turn["tool_calls"] = calls
        if role == "tool":
            turn["tool_call_id"] = message.get("tool_call_id")
        out.append(turn)
    return out


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") == "text":
        return {"type": "text", "text": part.get("text", "")}
    if part.get("type") == "image_url":
        return {"type": "image_url", "image_url": {"url": shapes.image_url(part)}}
    raise ConfigurationError(f"content part type '{part.get('type')}' is not supported by cohere")


def tools(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {k: v for k, v in f.items() if k != "strict"}}
            for f in shapes.function_tools(value)]


def tool_choice(value: Any) -> str | None:
    if isinstance(value, dict):
        raise ConfigurationError("cohere cannot force one named tool; use 'required'")
    choices = {"auto": None, "required": "REQUIRED", "none": "NONE"}
    if value not in choices:
        raise ConfigurationError(f"unknown tool_choice '{value}'")
    return choices[value]


def response_format(value: dict[str, Any]) -> dict[str, Any] | None:
    if value.get("type") == "json_object":
        return {"type": "json_object"}
    if value.get("type") == "json_schema":
        return {"type": "json_object",
                "json_schema": (value.get("json_schema") or {}).get("schema") or {}}
    return None


def usage_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    # `tokens` (what the model read and wrote) wins over `billed_units` field by field.
    tokens = shapes.merge_counts(shapes.merge_counts({}, raw.get("billed_units")),
                                 raw.get("tokens"))
    return shapes.usage(shapes.count(tokens, "input_tokens"),
                        shapes.count(tokens, "output_tokens"),
                        cache_read=shapes.count(raw, "cached_tokens"))


def completion_of(body: dict[str, Any], *, now: int, model: str) -> dict[str, Any]:
    message = body.get("message") or {}
    text = "".join(p.get("text", "") for p in message.get("content") or []
                   if p.get("type") == "text")
    calls = [shapes.tool_call(c["id"], c["function"]["name"], c["function"].get("arguments", ""))
             for c in message.get("tool_calls") or []]
    return shapes.completion(
        response_id=body.get("id", ""), model=model, created=now, content=text, tool_calls=calls,
        finish_reason=_finish(body.get("finish_reason")), usage=usage_of(body.get("usage") or {}))


def _finish(reason: str | None) -> str:
    if reason == "ERROR":
        raise StreamError(ProviderError(500, "cohere stopped with finish_reason ERROR",
                                        "upstream_error", code="ERROR"))
    return FINISH_REASONS.get(reason or "", "stop")


def event_chunks(event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
    data = orjson.loads(event.data) if event.data else {}
    kind = data.get("type") or event.event
    message = (data.get("delta") or {}).get("message") or {}
    if kind == "message-start":
        state.response_id = data.get("id") or state.response_id
        return [shapes.chunk(state, {"role": "assistant", "content": ""})]
    if kind == "content-delta":
        return [shapes.chunk(state, {"content": (message.get("content") or {}).get("text", "")})]
    if kind == "tool-call-start":
        call = message["tool_calls"]
        delta = shapes.tool_call(call["id"], call["function"]["name"],
                                 call["function"].get("arguments", "")) | {"index": data["index"]}
        return [shapes.chunk(state, {"tool_calls": [delta]})]
    if kind == "tool-call-delta":
        arguments = message["tool_calls"]["function"].get("arguments", "")
        return [shapes.chunk(state, {"tool_calls": [
            {"index": data["index"], "function": {"arguments": arguments}}]})]
    if kind == "message-end":
        state.extra["ended"] = True
        delta = data.get("delta") or {}
        state.finish_reason = _finish(delta.get("finish_reason"))
        state.usage = usage_of(delta.get("usage") or {})
        return [shapes.chunk(state, {}, state.finish_reason), shapes.usage_chunk(state)]
    if kind == "error" or "message" in data and kind is None:
        raise StreamError(error_of(500, data))
    return []  # content-start/-end, tool-plan-delta, tool-call-end, citations


def error_of(status: int, body: Any) -> ProviderError:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return ProviderError(status, body["message"])
    return ProviderError(status, shapes.json_text(body)[:1000] or f"HTTP {status}")


class CohereAdapter(NoNativeDialects):
    slug = "cohere"
    stream_format: StreamFormat = "sse"
    injects_stream_usage = True
    rewrites_responses = True
    header_options: tuple[str, ...] = ()
    service_account_option: str | None = None

    def build_request(self, endpoint: Endpoint, body: Mapping[str, Any], target: Target, *,
                      stream: bool) -> UpstreamRequest:
        if endpoint is Endpoint.CHAT:
            path, payload = "chat", apply(PARAMS | NATIVE, body)
        elif endpoint is Endpoint.EMBEDDINGS:
            path = "embed"
            payload = apply(EMBED_PARAMS | EMBED_NATIVE, body) | {"embedding_types": ["float"]}
        else:
            raise ConfigurationError(f"cohere does not serve /v1/{endpoint.value}")
        headers = self.auth_headers(target) | {"content-type": "application/json",
                                               "accept": "application/json"}
        return UpstreamRequest("POST", self.proxy_url(path, target), headers,
                               orjson.dumps(payload))

    def proxy_url(self, path: str, target: Target) -> str:
        """`path` is below the v2 API, the one the translation speaks."""
        return f"{(target.base_url or BASE_URL).rstrip('/')}/v2/{path.lstrip('/')}"

    def auth_headers(self, target: Target) -> dict[str, str]:
        return {"authorization": f"Bearer {target.api_key}"} if target.api_key else {}

    def translate_response(self, endpoint: Endpoint, body: dict[str, Any], *, now: int,
                           request_id: str = "", model: str = "") -> dict[str, Any]:
        if endpoint is Endpoint.EMBEDDINGS:
            billed = (body.get("meta") or {}).get("billed_units") or {}
            return shapes.embeddings((body.get("embeddings") or {}).get("float") or [],
                                     model=model,
                                     prompt_tokens=shapes.count(billed, "input_tokens"))
        return completion_of(body, now=now, model=model)

    def translate_event(self, endpoint: Endpoint, event: SSEEvent,
                        state: StreamState) -> list[dict[str, Any]]:
        return event_chunks(event, state)

    def end_stream(self, endpoint: Endpoint, state: StreamState) -> list[dict[str, Any]]:
        if not state.extra.get("ended"):
            raise StreamError(ProviderError(502, "the stream ended before message-end",
                                            "upstream_error", code="stream_truncated"))
        return []

    def translate_error(self, status: int, body: Any) -> ProviderError:
        return error_of(status, body)

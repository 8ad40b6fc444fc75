"""Anthropic's Messages API behind OpenAI's chat completions.

Reference: https://docs.anthropic.com/en/api/messages and .../messages-streaming.
Vertex AI reuses `messages_body`, `completion_of` and `AnthropicStream` for Claude on Vertex.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers import openai_shapes as shapes
from providers.base import (
    MERGE,
    ConfigurationError,
    Endpoint,
    Param,
    ProviderError,
    SSEEvent,
    StreamError,
    StreamFormat,
    StreamState,
    Target,
    UpstreamRequest,
    sse_events,
)
from providers.table import apply, as_list, negate

BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
# Anthropic requires max_tokens; OpenAI clients often omit it.
DEFAULT_MAX_TOKENS = 4096

PARAMS: dict[str, Param] = {
    "model": Param("model"),
    "messages": Param(MERGE, transform=lambda m: split_system(m)),
    "max_tokens": Param("max_tokens", default=DEFAULT_MAX_TOKENS),
    "max_completion_tokens": Param("max_tokens"),
    "stop": Param("stop_sequences", transform=as_list),
    "temperature": Param("temperature", clamp=(0, 1)),
    "top_p": Param("top_p"),
    "user": Param("metadata.user_id"),
    "tools": Param("tools", transform=lambda t: tools(t)),
    "tool_choice": Param("tool_choice", transform=lambda c: tool_choice(c)),
    "parallel_tool_calls": Param("tool_choice.disable_parallel_tool_use", transform=negate),
    "stream": Param("stream"),
}
# Anthropic fields with no OpenAI name, passed through when a client sends them.
NATIVE: dict[str, Param] = {
    "top_k": Param("top_k"),
    "thinking": Param("thinking"),
}

FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "refusal": "content_filter",
    "max_tokens": "length", "model_context_window_exceeded": "length", "tool_use": "tool_calls",
}
# The Messages API paths (below /v1/) a native request may take.
NATIVE_PATHS = frozenset({"messages", "messages/count_tokens"})
# Error `type` -> HTTP status, for errors that arrive inside a 200 stream.
ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
    "api_error": 500, "overloaded_error": 529,
}


def messages_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat body (shared with Claude on Vertex)."""
    out = apply(PARAMS | NATIVE, body)
    choice = out.get("tool_choice")
    if isinstance(choice, dict):
        choice.setdefault("type", "auto")
    return out


def split_system(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """System and developer messages, wherever they are, become `system` blocks."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_block(p) for p in shapes.parts_of(message.get("content")))
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message)]
        elif role == "assistant":
            blocks = _assistant_blocks(message)
        elif role == "user":
            blocks = [_user_block(p) for p in shapes.parts_of(message.get("content"))]
        else:
            raise ConfigurationError(f"unknown message role '{role}'")
        if turns and turns[-1]["role"] == role:  # tool results answering one turn go together
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    out: dict[str, Any] = {"messages": turns}
    if system:
        out["system"] = system
    return out


def _text_block(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") != "text":
        raise ConfigurationError("system messages may only hold text parts")
    block = {"type": "text", "text": part.get("text", "")}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]  # kept whole, ttl included
    return block


def _user_block(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return _text_block(part)
    if kind != "image_url":
        raise ConfigurationError(f"content part type '{kind}' is not supported by anthropic")
    url = shapes.image_url(part)
    inline = shapes.data_url(url)
    if inline is None:
        block: dict[str, Any] = {"type": "image", "source": {"type": "url", "url": url}}
    else:
        media_type, data = inline
        kind = "document" if media_type == "application/pdf" else "image"
        block = {"type": kind, "source": {"type": "base64", "media_type": media_type,
                                          "data": data}}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [_text_block(p) for p in shapes.parts_of(message.get("content"))]
    for call in message.get("tool_calls") or []:
        blocks.append({"type": "tool_use", "id": call.get("id"),
                       "name": (call.get("function") or {}).get("name"),
                       "input": shapes.arguments(call)})
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    blocks = content if isinstance(content, str) else [
        _text_block(p) for p in shapes.parts_of(content)]
    return {"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": blocks}


def tools(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": f["name"], "description": f.get("description", ""),
             "input_schema": f.get("parameters") or {"type": "object", "properties": {}}}
            for f in shapes.function_tools(value)]


def tool_choice(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {"type": "tool", "name": (value.get("function") or {}).get("name")}
    choices = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
    if value not in choices:
        raise ConfigurationError(f"unknown tool_choice '{value}'")
    return choices[value]


def usage_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    read = shapes.count(raw, "cache_read_input_tokens")
    write = shapes.count(raw, "cache_creation_input_tokens")
    prompt = shapes.count(raw, "input_tokens") + read + write
    return shapes.usage(prompt, shapes.count(raw, "output_tokens"), cache_read=read,
                        cache_write=write)


def completion_of(body: dict[str, Any], *, now: int, model: str) -> dict[str, Any]:
    blocks = body.get("content") or []
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    calls = [shapes.tool_call(b["id"], b["name"], orjson.dumps(b.get("input", {})).decode())
             for b in blocks if b.get("type") == "tool_use"]
    return shapes.completion(
        response_id=body.get("id", ""), model=body.get("model") or model, created=now,
        content=text, tool_calls=calls, finish_reason=FINISH_REASONS.get(body.get("stop_reason")
                                                                          or "", "stop"),
        usage=usage_of(body.get("usage") or {}))


def error_of(status: int, body: Any) -> ProviderError:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ProviderError(status, shapes.json_text(body)[:1000] or f"HTTP {status}")
    return ProviderError(status, str(error.get("message", "")), error.get("type"))


def event_chunks(event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
    """One Anthropic stream event as OpenAI chunks (shared with Claude on Vertex)."""
    data = orjson.loads(event.data) if event.data else {}
    kind = data.get("type") or event.event
    tools_seen: dict[int, int] = state.extra.setdefault("tool_index", {})
    if kind == "message_start":
        message = data["message"]
        state.response_id = message.get("id") or state.response_id
        state.model = message.get("model") or state.model
        state.extra["usage"] = shapes.merge_counts({}, message.get("usage"))
        return [shapes.chunk(state, {"role": "assistant", "content": ""})]
    if kind == "content_block_start":
        block = data["content_block"]
        if block.get("type") == "tool_use":
            index = tools_seen[data["index"]] = len(tools_seen)
            call = shapes.tool_call(block["id"], block["name"], "") | {"index": index}
            return [shapes.chunk(state, {"tool_calls": [call]})]
        if block.get("type") == "text" and block.get("text"):
            return [shapes.chunk(state, {"content": block["text"]})]
        return []
    if kind == "content_block_delta":
        delta = data["delta"]
        if delta.get("type") == "text_delta":
            return [shapes.chunk(state, {"content": delta["text"]})]
        if delta.get("type") == "input_json_delta":
            call = {"index": tools_seen[data["index"]],
                    "function": {"arguments": delta.get("partial_json", "")}}
            return [shapes.chunk(state, {"tool_calls": [call]})]
        return []  # thinking and signature deltas have no OpenAI field
    if kind == "message_delta":
        # Counts in message_delta are cumulative; its nulls keep message_start's.
        shapes.merge_counts(state.extra.setdefault("usage", {}), data.get("usage"))
        state.finish_reason = FINISH_REASONS.get(data["delta"].get("stop_reason") or "", "stop")
        state.usage = usage_of(state.extra["usage"])
        return [shapes.chunk(state, {}, state.finish_reason)]
    if kind == "message_stop":
        state.extra["stopped"] = True
        return [shapes.usage_chunk(state)] if state.usage else []
    if kind == "error":
        error = data.get("error") or {}
        raise StreamError(ProviderError(ERROR_STATUS.get(str(error.get("type")), 500),
                                        str(error.get("message", "stream error")),
                                        error.get("type")))
    return []  # ping, content_block_stop and event types added later


def check_stream_end(state: StreamState) -> None:
    if not state.extra.get("stopped"):
        raise StreamError(ProviderError(502, "the stream ended before message_stop",
                                        "upstream_error", code="stream_truncated"))


def native_headers(target: Target, client: Mapping[str, str]) -> dict[str, str]:
    """anthropic-version and anthropic-beta for a native Messages request: the client's own
    version wins over x-portkey-anthropic-version; its betas join x-portkey-anthropic-beta's."""
    headers = {}
    version = client.get("anthropic-version") or target.options.get("anthropic-version")
    headers["anthropic-version"] = version or DEFAULT_VERSION
    betas = [b.strip() for value in (target.options.get("anthropic-beta"),
                                     client.get("anthropic-beta"))
             for b in (value or "").split(",") if b.strip()]
    if betas:
        headers["anthropic-beta"] = ",".join(dict.fromkeys(betas))
    return headers


class AnthropicAdapter:
    slug = "anthropic"
    stream_format: StreamFormat = "sse"
    injects_stream_usage = True  # the relay hides the usage chunk unless the client asked
    rewrites_responses = True
    header_options: tuple[str, ...] = ("anthropic-version", "anthropic-beta")
    service_account_option: str | None = None
    native_dialects = frozenset({"messages"})

    def build_request(self, endpoint: Endpoint, body: Mapping[str, Any], target: Target, *,
                      stream: bool) -> UpstreamRequest:
        if endpoint is not Endpoint.CHAT:
            raise ConfigurationError(f"anthropic does not serve /v1/{endpoint.value}")
        headers = self.auth_headers(target) | {"content-type": "application/json"}
        return UpstreamRequest("POST", self.proxy_url("messages", target), headers,
                               orjson.dumps(messages_body(body)))

    def proxy_url(self, path: str, target: Target) -> str:
        """`path` is below the API's `/v1/`, like the gateway's own routes."""
        return f"{(target.base_url or BASE_URL).rstrip('/')}/v1/{path.lstrip('/')}"

    def auth_headers(self, target: Target) -> dict[str, str]:
        headers = {"anthropic-version": target.options.get("anthropic-version", DEFAULT_VERSION)}
        if "anthropic-beta" in target.options:
            headers["anthropic-beta"] = target.options["anthropic-beta"]
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return headers

    def translate_response(self, endpoint: Endpoint, body: dict[str, Any], *, now: int,
                           request_id: str = "", model: str = "") -> dict[str, Any]:
        return completion_of(body, now=now, model=model)

    def translate_event(self, endpoint: Endpoint, event: SSEEvent,
                        state: StreamState) -> list[dict[str, Any]]:
        return event_chunks(event, state)

    def end_stream(self, endpoint: Endpoint, state: StreamState) -> list[dict[str, Any]]:
        check_stream_end(state)
        return []

    def translate_error(self, status: int, body: Any) -> ProviderError:
        return error_of(status, body)

    def takes_native(self, dialect: str, path: str, model: str) -> bool:
        return dialect == "messages" and path in NATIVE_PATHS

    def build_native(self, dialect: str, path: str, body: Mapping[str, Any], target: Target,
                     *, stream: bool, headers: Mapping[str, str]) -> UpstreamRequest:
        if not self.takes_native(dialect, path, ""):
            raise ConfigurationError(f"anthropic does not take '{dialect}' requests for {path}")
        sent = self.auth_headers(target) | native_headers(target, headers)
        return UpstreamRequest("POST", self.proxy_url(path, target),
                               sent | {"content-type": "application/json"}, orjson.dumps(body))

    def native_events(self, dialect: str, event: SSEEvent) -> list[dict[str, Any]]:
        return sse_events(event)

"""Google's Gemini API (AI Studio) behind OpenAI's chat completions and embeddings.

Reference: https://ai.google.dev/api/generate-content. Streams use `alt=sse`, so they are
plain SSE (never the JSON-array form whose last element Portkey cut off, PR #1710).
Vertex AI reuses `gemini_body`, `completion_of`, `event_chunks` and `error_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from providers import openai_shapes as shapes
from providers.base import (
    MERGE,
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

BASE_URL = "https://generativelanguage.googleapis.com"

PARAMS: dict[str, Param] = {
    "messages": Param(MERGE, transform=lambda m: contents(m)),
    "temperature": Param("generationConfig.temperature"),
    "top_p": Param("generationConfig.topP"),
    "max_tokens": Param("generationConfig.maxOutputTokens"),
    "max_completion_tokens": Param("generationConfig.maxOutputTokens"),
    "stop": Param("generationConfig.stopSequences", transform=as_list),
    "n": Param("generationConfig.candidateCount"),
    "seed": Param("generationConfig.seed"),
    "presence_penalty": Param("generationConfig.presencePenalty"),
    "frequency_penalty": Param("generationConfig.frequencyPenalty"),
    "logprobs": Param("generationConfig.responseLogprobs"),
    "top_logprobs": Param("generationConfig.logprobs"),
    "response_format": Param("generationConfig", transform=lambda f: response_format(f)),
    "tools": Param("tools", transform=lambda t: tools(t)),
    "tool_choice": Param("toolConfig.functionCallingConfig", transform=lambda c: tool_choice(c)),
}
NATIVE: dict[str, Param] = {
    "top_k": Param("generationConfig.topK"),
    "safety_settings": Param("safetySettings"),
    "cached_content": Param("cachedContent"),
    "labels": Param("labels"),  # Vertex only
}

FINISH_REASONS = {
    "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
    "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter", "MALFORMED_FUNCTION_CALL": "stop", "OTHER": "stop",
}
# google.rpc status -> HTTP status, for errors that arrive inside a 200 stream.
# Gemini signs its function calls (`thoughtSignature`) and wants the signature back with the
# call in the next turn; OpenAI has no field for it, so it rides in the tool call id.
SIGNATURE_SEP = "__thought__"
RPC_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499,
    "INTERNAL": 500, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}


def gemini_body(body: Mapping[str, Any]) -> dict[str, Any]:
    return apply(PARAMS | NATIVE, body)


def contents(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """`contents` plus `systemInstruction` (from every system message, wherever it stands)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for tool results
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append({"text": shapes.text_of(message.get("content"))})
            continue
        if role == "user":
            parts = [_part(p) for p in shapes.parts_of(message.get("content"))]
        elif role == "assistant":
            role, parts = "model", _model_parts(message, names)
        elif role == "tool":
            role, parts = "user", [_function_response(message, names)]
        else:
            raise ConfigurationError(f"unknown message role '{role}'")
        if turns and turns[-1]["role"] == role:  # Gemini wants user and model turns to alternate
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    out: dict[str, Any] = {"contents": turns}
    if system:
        out["systemInstruction"] = {"parts": system}
    return out


def _part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"text": part.get("text", "")}
    if kind != "image_url":
        raise ConfigurationError(f"content part type '{kind}' is not supported by gemini")
    url = shapes.image_url(part)
    inline = shapes.data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    return {"fileData": {"mimeType": shapes.guess_media_type(url), "fileUri": url}}


def _model_parts(message: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"text": p.get("text", "")} for p in shapes.parts_of(message.get("content"))]
    for call in message.get("tool_calls") or []:
        name = (call.get("function") or {}).get("name")
        if not isinstance(name, str):
            raise ConfigurationError("each tool call needs function.name")
        names[str(call.get("id", ""))] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": shapes.arguments(call)}}
        _, sep, signature = str(call.get("id", "")).partition(SIGNATURE_SEP)
        if sep and signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    name = names.get(message.get("tool_call_id", "")) or message.get("name")
    if not name:
        raise ConfigurationError(f"tool message answers unknown tool_call_id "
                                 f"'{message.get('tool_call_id')}'")
    text = shapes.text_of(message.get("content"))
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    return {"functionResponse": {"name": name, "response": response}}


def tools(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    declarations = []
    for function in shapes.function_tools(value):
        declaration = {"name": function["name"], "description": function.get("description", "")}
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def tool_choice(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {"mode": "ANY", "allowedFunctionNames": [(value.get("function") or {}).get("name")]}
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if value not in modes:
        raise ConfigurationError(f"unknown tool_choice '{value}'")
    return {"mode": modes[value]}


def response_format(value: dict[str, Any]) -> dict[str, Any] | None:
    kind = value.get("type")
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema") or {}
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    return None


def usage_of(meta: Mapping[str, Any]) -> dict[str, Any]:
    """promptTokenCount already includes cached tokens; thoughts count as completion."""
    thoughts = shapes.count(meta, "thoughtsTokenCount")
    return shapes.usage(shapes.count(meta, "promptTokenCount"),
                        shapes.count(meta, "candidatesTokenCount") + thoughts,
                        cache_read=shapes.count(meta, "cachedContentTokenCount"),
                        reasoning=thoughts)


def _finish(reason: str | None, called_tools: bool) -> str | None:
    if reason is None:
        return None
    mapped = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if called_tools and mapped == "stop" else mapped


def _tool_call(response_id: str, index: int, part: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call for a `functionCall` part, its signature kept in the id."""
    call = part["functionCall"]
    call_id = call.get("id") or f"call_{response_id}_{index}"
    if part.get("thoughtSignature"):
        call_id += SIGNATURE_SEP + part["thoughtSignature"]
    return shapes.tool_call(call_id, call["name"], orjson.dumps(call.get("args", {})).decode())


def completion_of(body: dict[str, Any], *, now: int, response_id: str,
                  model: str) -> dict[str, Any]:
    response_id = body.get("responseId") or response_id
    choices = []
    for position, candidate in enumerate(body.get("candidates") or []):
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
        calls = [p for p in parts if "functionCall" in p]
        tool_calls = [_tool_call(response_id, i, p) for i, p in enumerate(calls)]
        one = shapes.completion(response_id=response_id, model="", created=now, content=text,
                                tool_calls=tool_calls, usage=None,
                                index=candidate.get("index", position),
                                finish_reason=_finish(candidate.get("finishReason"), bool(calls)))
        choices.extend(one["choices"])
    if not choices:
        raise StreamError(_blocked(body))
    return {"id": response_id, "object": "chat.completion", "created": now,
            "model": body.get("modelVersion") or model, "choices": choices,
            "usage": usage_of(body.get("usageMetadata") or {})}


def _blocked(body: Mapping[str, Any]) -> ProviderError:
    reason = (body.get("promptFeedback") or {}).get("blockReason", "no candidates")
    return ProviderError(400, f"the prompt was blocked: {reason}", "invalid_request_error",
                         code="content_filter")


def event_chunks(event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
    """One `alt=sse` event (a whole GenerateContentResponse) as OpenAI chunks."""
    data = orjson.loads(event.data)
    if "error" in data:
        raise StreamError(error_of(500, data))
    state.response_id = data.get("responseId") or state.response_id
    state.model = data.get("modelVersion") or state.model
    if data.get("usageMetadata"):
        # Each chunk may carry usageMetadata; a later one's missing or null field keeps the
        # count an earlier one gave.
        counts = shapes.merge_counts(state.extra.setdefault("usage", {}), data["usageMetadata"])
        state.usage = usage_of(counts)
    if not data.get("candidates") and (data.get("promptFeedback") or {}).get("blockReason"):
        raise StreamError(_blocked(data))
    out = []
    for position, candidate in enumerate(data.get("candidates") or []):
        index = candidate.get("index", position)
        seen: dict[int, int] = state.extra.setdefault("tool_calls", {})
        delta: dict[str, Any] = {}
        if not state.extra.get("started"):
            state.extra["started"] = True
            delta["role"] = "assistant"
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
        if text:
            delta["content"] = text
        calls = []
        for part in parts:
            if "functionCall" in part:
                number = seen[index] = seen.get(index, -1) + 1
                calls.append(_tool_call(state.response_id, number, part) | {"index": number})
        if calls:
            delta["tool_calls"] = calls
        finish = _finish(candidate.get("finishReason"), index in seen)
        if finish:
            state.finish_reason = finish
            state.extra["finished"] = True
        if delta or finish:
            out.append(shapes.chunk(state, delta, finish, index))
    return out


def stream_end(state: StreamState) -> list[dict[str, Any]]:
    if not state.extra.get("finished"):
        raise StreamError(ProviderError(502, "the stream ended before a finishReason",
                                        "upstream_error", code="stream_truncated"))
    return [shapes.usage_chunk(state)] if state.usage else []


def error_of(status: int, body: Any) -> ProviderError:
    if isinstance(body, list) and body:  # Vertex sometimes wraps the error in an array
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ProviderError(status, shapes.json_text(body)[:1000] or f"HTTP {status}")
    rpc = error.get("status")
    if status == 500 and rpc in RPC_STATUS:  # an error event inside a 200 stream
        status = RPC_STATUS[rpc]
    return ProviderError(status, str(error.get("message", "")), rpc, code=rpc)


def embed_body(body: Mapping[str, Any], model: str) -> dict[str, Any]:
    extra = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") else {}
    return {"requests": [{"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
                         | extra for text in shapes.embedding_inputs(dict(body))]}


class GoogleAdapter(NoNativeDialects):
    slug = "google"
    stream_format: StreamFormat = "sse"
    injects_stream_usage = True
    rewrites_responses = True
    header_options: tuple[str, ...] = ()
    service_account_option: str | None = None

    def build_request(self, endpoint: Endpoint, body: Mapping[str, Any], target: Target, *,
                      stream: bool) -> UpstreamRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ConfigurationError("'model' is required")
        base = f"models/{quote(model, safe='')}"
        if endpoint is Endpoint.EMBEDDINGS:
            url, payload = f"{base}:batchEmbedContents", embed_body(body, model)
        elif endpoint is Endpoint.CHAT:
            url = f"{base}:streamGenerateContent?alt=sse" if stream else f"{base}:generateContent"
            payload = gemini_body(body)
        else:
            raise ConfigurationError(f"google does not serve /v1/{endpoint.value}")
        headers = self.auth_headers(target) | {"content-type": "application/json"}
        return UpstreamRequest("POST", self.proxy_url(url, target), headers,
                               orjson.dumps(payload))

    def proxy_url(self, path: str, target: Target) -> str:
        """`path` is below the API's version (`v1beta`, the one with every feature)."""
        return f"{(target.base_url or BASE_URL).rstrip('/')}/v1beta/{path.lstrip('/')}"

    def auth_headers(self, target: Target) -> dict[str, str]:
        # A header rather than `?key=`: keys in URLs end up in access logs.
        return {"x-goog-api-key": target.api_key} if target.api_key else {}

    def translate_response(self, endpoint: Endpoint, body: dict[str, Any], *, now: int,
                           request_id: str = "", model: str = "") -> dict[str, Any]:
        if endpoint is Endpoint.EMBEDDINGS:
            return shapes.embeddings([e.get("values", []) for e in body.get("embeddings", [])],
                                     model=model, prompt_tokens=0)
        return completion_of(body, now=now, response_id=f"chatcmpl-{request_id}", model=model)

    def translate_event(self, endpoint: Endpoint, event: SSEEvent,
                        state: StreamState) -> list[dict[str, Any]]:
        return event_chunks(event, state)

    def end_stream(self, endpoint: Endpoint, state: StreamState) -> list[dict[str, Any]]:
        return stream_end(state)

    def translate_error(self, status: int, body: Any) -> ProviderError:
        return error_of(status, body)

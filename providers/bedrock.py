"""AWS Bedrock's Converse and ConverseStream APIs behind OpenAI's chat completions.

Reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
and ..._ConverseStream.html. Requests are signed with botocore's SigV4 (the clock comes in
as `Target.now`); streams arrive in AWS's binary event-stream framing, which the gateway
decodes into events named by `:event-type` (or `:exception-type` for errors).
Embeddings use InvokeModel (Titan text embeddings, Cohere Embed).
Credentials: `x-portkey-aws-access-key-id`, `-aws-secret-access-key` (or the Authorization
key), `-aws-session-token`, `-aws-region`; or a Bedrock API key alone, sent as a bearer token.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

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
)
from providers.options import check_value
from providers.table import apply, as_list

DEFAULT_REGION = "us-east-1"
ANTHROPIC_VERSION = "bedrock-2023-05-31"  # InvokeModel's Messages API version

PARAMS: dict[str, Param] = {
    "messages": Param(MERGE, transform=lambda m: converse_messages(m)),
    "max_tokens": Param("inferenceConfig.maxTokens"),
    "max_completion_tokens": Param("inferenceConfig.maxTokens"),
    "temperature": Param("inferenceConfig.temperature"),
    "top_p": Param("inferenceConfig.topP"),
    "stop": Param("inferenceConfig.stopSequences", transform=as_list),
    "tools": Param("toolConfig.tools", transform=lambda t: tools(t)),
    "tool_choice": Param("toolConfig.toolChoice", transform=lambda c: tool_choice(c)),
}
NATIVE: dict[str, Param] = {
    "top_k": Param("additionalModelRequestFields.top_k"),
    "thinking": Param("additionalModelRequestFields.thinking"),
    "additional_model_request_fields": Param("additionalModelRequestFields"),
    "guardrail_config": Param("guardrailConfig"),
    "performance_config": Param("performanceConfig"),
}

FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
}
# ConverseStream exception events -> HTTP status (the stream itself answered 200).
EXCEPTION_STATUS = {
    "validationException": 400, "accessDeniedException": 403,
    "resourceNotFoundException": 404, "modelTimeoutException": 408,
    "throttlingException": 429, "modelNotReadyException": 429,
    "modelStreamErrorException": 424, "internalServerException": 500,
    "serviceUnavailableException": 503,
}
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                  "image/gif": "gif", "image/webp": "webp"}


def converse_messages(messages: list[dict[str, Any]]) -> dict[str, Any]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_blocks(shapes.parts_of(message.get("content"))))
            continue
        if role == "tool":
            role, blocks = "user", [{"toolResult": {
                "toolUseId": message.get("tool_call_id"),
                "content": [{"text": shapes.text_of(message.get("content"))}]}}]
        elif role == "assistant":
            blocks = _blocks(shapes.parts_of(message.get("content"))) + [
                {"toolUse": {"toolUseId": c.get("id"), "name": (c.get("function") or {})
                             .get("name"), "input": shapes.arguments(c)}}
                for c in message.get("tool_calls") or []]
        elif role == "user":
            blocks = _blocks(shapes.parts_of(message.get("content")))
        else:
            raise ConfigurationError(f"unknown message role '{role}'")
        if turns and turns[-1]["role"] == role:  # Converse wants roles to alternate
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    out: dict[str, Any] = {"messages": turns}
    if system:
        out["system"] = system
    return out


def _blocks(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    blocks = []
    for part in parts:
        if part.get("type") == "text":
            blocks.append({"text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image(shapes.image_url(part)))
        else:
            raise ConfigurationError(
                f"content part type '{part.get('type')}' is not supported by bedrock")
        if part.get("cache_control"):  # Anthropic-style caching becomes a Converse cachePoint
            blocks.append({"cachePoint": {"type": "default"}})
    return blocks


def _image(url: str) -> dict[str, Any]:
    inline = shapes.data_url(url)
    if inline is None:
        if url.startswith("s3://"):
            fmt = _IMAGE_FORMATS.get(shapes.guess_media_type(url), "jpeg")
            return {"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}}
        raise ConfigurationError("bedrock cannot fetch image URLs; send a data: URL or s3:// URI")
    media_type, data = inline
    if media_type not in _IMAGE_FORMATS:
        raise ConfigurationError(f"bedrock does not accept images of type {media_type}")
    return {"image": {"format": _IMAGE_FORMATS[media_type], "source": {"bytes": data}}}


def tools(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"toolSpec": {"name": f["name"], "description": f.get("description") or f["name"],
                          "inputSchema": {"json": f.get("parameters") or {"type": "object"}}}}
            for f in shapes.function_tools(value)]


def tool_choice(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return {"tool": {"name": (value.get("function") or {}).get("name")}}
    choices: dict[str, dict[str, Any] | None] = {"auto": {"auto": {}}, "required": {"any": {}},
                                                 "none": None}  # Converse has no "none"
    if value not in choices:
        raise ConfigurationError(f"unknown tool_choice '{value}'")
    return choices[value]


def usage_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    read = shapes.count(raw, "cacheReadInputTokens")
    write = shapes.count(raw, "cacheWriteInputTokens")
    return shapes.usage(shapes.count(raw, "inputTokens") + read + write,
                        shapes.count(raw, "outputTokens"), cache_read=read, cache_write=write)


def completion_of(body: dict[str, Any], *, now: int, response_id: str,
                  model: str) -> dict[str, Any]:
    blocks = ((body.get("output") or {}).get("message") or {}).get("content") or []
    text = "".join(b["text"] for b in blocks if "text" in b)
    calls = [shapes.tool_call(b["toolUse"]["toolUseId"], b["toolUse"]["name"],
                              orjson.dumps(b["toolUse"].get("input", {})).decode())
             for b in blocks if "toolUse" in b]
    return shapes.completion(
        response_id=response_id, model=model, created=now, content=text, tool_calls=calls,
        finish_reason=FINISH_REASONS.get(body.get("stopReason") or "", "stop"),
        usage=usage_of(body.get("usage") or {}))


def event_chunks(event: SSEEvent, state: StreamState) -> list[dict[str, Any]]:
    data = orjson.loads(event.data) if event.data else {}
    kind = event.event
    tools_seen: dict[int, int] = state.extra.setdefault("tool_index", {})
    if kind == "messageStart":
        return [shapes.chunk(state, {"role": "assistant", "content": ""})]
    if kind == "contentBlockStart":
        use = (data.get("start") or {}).get("toolUse")
        if not use:
            return []
        index = tools_seen[data["contentBlockIndex"]] = len(tools_seen)
        call = shapes.tool_call(use["toolUseId"], use["name"], "") | {"index": index}
        return [shapes.chunk(state, {"tool_calls": [call]})]
    if kind == "contentBlockDelta":
        delta = data.get("delta") or {}
        if "text" in delta:
            return [shapes.chunk(state, {"content": delta["text"]})]
        if "toolUse" in delta:
            call = {"index": tools_seen[data["contentBlockIndex"]],
                    "function": {"arguments": delta["toolUse"].get("input", "")}}
            return [shapes.chunk(state, {"tool_calls": [call]})]
        return []  # reasoningContent has no OpenAI field
    if kind == "messageStop":
        state.finish_reason = FINISH_REASONS.get(data.get("stopReason") or "", "stop")
        return [shapes.chunk(state, {}, state.finish_reason)]
    if kind == "metadata":
        state.extra["ended"] = True
        state.usage = usage_of(data.get("usage") or {})
        return [shapes.usage_chunk(state)]
    if kind.endswith("Exception") or kind == "error":
        code = data.get("code") or kind
        raise StreamError(ProviderError(EXCEPTION_STATUS.get(kind, 500),
                                        str(data.get("message") or kind), kind, code=code))
    return []  # contentBlockStop


def embed_body(body: Mapping[str, Any], model: str) -> dict[str, Any]:
    """InvokeModel bodies: Cohere Embed takes a batch; Titan one text per request."""
    texts = shapes.embedding_inputs(dict(body))
    if "cohere." in model:
        return {"texts": texts, "input_type": body.get("input_type") or "search_document"}
    if len(texts) != 1:
        raise ConfigurationError("Titan embedding models take one input per request; "
                                 "send 'input' as a string")
    extra = {"dimensions": body["dimensions"]} if body.get("dimensions") else {}
    return {"inputText": texts[0]} | extra


def embeddings_of(body: dict[str, Any], model: str) -> dict[str, Any]:
    if "embedding" in body:  # Titan
        return shapes.embeddings([body["embedding"]], model=model,
                                 prompt_tokens=shapes.count(body, "inputTextTokenCount"))
    vectors = body.get("embeddings") or []
    if isinstance(vectors, dict):  # Cohere's embeddings_by_type
        vectors = vectors.get("float") or []
    return shapes.embeddings(vectors, model=model, prompt_tokens=0)


def credentials(target: Target) -> tuple[str, str, str | None] | None:
    """(access key id, secret, session token), or None for a Bedrock API key."""
    key_id = target.options.get("aws-access-key-id")
    if not key_id:
        return None
    secret = target.options.get("aws-secret-access-key") or target.api_key
    if not secret:
        raise ConfigurationError("bedrock needs x-portkey-aws-secret-access-key "
                                 "with x-portkey-aws-access-key-id")
    return key_id, secret, target.options.get("aws-session-token")


def is_claude(model: str) -> bool:
    """A Claude model id, inference profile or ARN (`us.anthropic.claude-...`)."""
    return "anthropic." in model or model.startswith("claude")


def invoke_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic's Messages body as InvokeModel takes it: the model is in the URL, the
    stream in the action, the version in the body. No `anthropic_beta`: Bedrock refuses
    betas it does not know, and Claude Code's are the first-party API's."""
    out = {k: v for k, v in body.items() if k not in ("model", "stream")}
    out.setdefault("anthropic_version", ANTHROPIC_VERSION)
    return out


def invoke_events(event: SSEEvent) -> list[dict[str, Any]]:
    """InvokeModelWithResponseStream: each `chunk` event holds one Anthropic event, base64."""
    if event.event == "chunk":
        data = orjson.loads(event.data)
        inner = orjson.loads(base64.b64decode(data["bytes"]))
        if not isinstance(inner, dict):
            raise ValueError("a chunk's event is not a JSON object")
        return [inner]
    if event.event.endswith("Exception") or event.event == "error":
        event_chunks(event, StreamState())  # raises the StreamError for it
    return []


class BedrockAdapter:
    slug = "bedrock"
    stream_format: StreamFormat = "aws-eventstream"
    injects_stream_usage = True
    rewrites_responses = True
    header_options: tuple[str, ...] = (
        "aws-access-key-id", "aws-secret-access-key", "aws-session-token", "aws-region")
    service_account_option: str | None = None
    # Claude models take Anthropic's Messages body through InvokeModel.
    native_dialects = frozenset({"messages"})

    def takes_native(self, dialect: str, path: str, model: str) -> bool:
        return dialect == "messages" and path == "messages" and is_claude(model)

    def build_native(self, dialect: str, path: str, body: Mapping[str, Any], target: Target,
                     *, stream: bool, headers: Mapping[str, str]) -> UpstreamRequest:
        model = body.get("model")
        if not isinstance(model, str) or not self.takes_native(dialect, path, model):
            raise ConfigurationError(f"bedrock takes '{dialect}' requests for Claude only")
        action = "invoke-with-response-stream" if stream else "invoke"
        url = self.proxy_url(f"model/{quote(model, safe='')}/{action}", target)
        payload = orjson.dumps(invoke_body(body))
        sent = {"content-type": "application/json",
                "accept": "application/vnd.amazon.eventstream" if stream else "application/json"}
        return UpstreamRequest("POST", url, self._signed(url, payload, sent, target), payload)

    def native_events(self, dialect: str, event: SSEEvent) -> list[dict[str, Any]]:
        return invoke_events(event)

    def build_request(self, endpoint: Endpoint, body: Mapping[str, Any], target: Target, *,
                      stream: bool) -> UpstreamRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ConfigurationError("'model' is required (a Bedrock model id or ARN)")
        if endpoint is Endpoint.CHAT:
            action = "converse-stream" if stream else "converse"
            payload = orjson.dumps(apply(PARAMS | NATIVE, body))
        elif endpoint is Endpoint.EMBEDDINGS:
            action, payload = "invoke", orjson.dumps(embed_body(body, model))
        else:
            raise ConfigurationError(f"bedrock does not serve /v1/{endpoint.value}")
        url = self.proxy_url(f"model/{quote(model, safe='')}/{action}", target)
        headers = {"content-type": "application/json", "accept": "application/json"}
        return UpstreamRequest("POST", url, self._signed(url, payload, headers, target), payload)

    def _signed(self, url: str, payload: bytes, headers: dict[str, str],
                target: Target) -> dict[str, str]:
        keys = credentials(target)
        if keys is None:
            return headers | self.auth_headers(target)
        if target.now is None:
            raise ConfigurationError("bedrock signing needs the gateway's clock (Target.now)")
        # botocore loads on the first signed request (it is large; most gateways never sign).
        from providers.aws_signing import sign

        return sign("POST", url, headers, payload, keys=keys, region=self._region(target),
                    service="bedrock", now=target.now)

    def _region(self, target: Target) -> str:
        return check_value("aws-region", target.options.get("aws-region") or DEFAULT_REGION)

    def proxy_url(self, path: str, target: Target) -> str:
        base = target.base_url or f"https://bedrock-runtime.{self._region(target)}.amazonaws.com"
        return f"{base.rstrip('/')}/{path.lstrip('/')}"

    def auth_headers(self, target: Target) -> dict[str, str]:
        # Only a Bedrock API key is a plain header; SigV4 signs whole requests (build_request).
        if credentials(target) is None and target.api_key:
            return {"authorization": f"Bearer {target.api_key}"}
        return {}

    def translate_response(self, endpoint: Endpoint, body: dict[str, Any], *, now: int,
                           request_id: str = "", model: str = "") -> dict[str, Any]:
        if endpoint is Endpoint.EMBEDDINGS:
            return embeddings_of(body, model)
        return completion_of(body, now=now, response_id=f"chatcmpl-{request_id}", model=model)

    def translate_event(self, endpoint: Endpoint, event: SSEEvent,
                        state: StreamState) -> list[dict[str, Any]]:
        return event_chunks(event, state)

    def end_stream(self, endpoint: Endpoint, state: StreamState) -> list[dict[str, Any]]:
        if not state.extra.get("ended"):
            raise StreamError(ProviderError(502, "the stream ended before its metadata event",
                                            "upstream_error", code="stream_truncated"))
        return []

    def translate_error(self, status: int, body: Any) -> ProviderError:
        message = body.get("message") or body.get("Message") if isinstance(body, dict) else None
        if isinstance(message, str):
            return ProviderError(status, message)
        return ProviderError(status, shapes.json_text(body)[:1000] or f"HTTP {status}")

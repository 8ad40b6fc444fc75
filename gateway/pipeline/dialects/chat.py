"""The canonical dialect: OpenAI Chat Completions, legacy completions and embeddings.

Decoding checks the shape every adapter relies on (messages, content parts, tool calls,
tools), so a body no adapter could translate is the client's 400 naming the field, and
anything an adapter still fails on is its own bug (a 502, see attempt.py). Encoding is the
identity: the pipeline already speaks this dialect.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.contracts.outcome import Outcome
from gateway.errors import GatewayError, InvalidRequest
from gateway.net.sse import DONE, encode
from gateway.pipeline.dialects import Decoded
from providers.base import Endpoint

_NO_BODY = (Endpoint.PROXY, Endpoint.MODELS)
_NOTHING = Decoded(None)


class ChatStreamEncoder:
    __slots__ = ()

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        return encode(chunk)

    def error(self, exc: GatewayError) -> bytes:
        # The OpenAI SDK raises a `data: {"error": ...}` event as an APIError.
        return encode(exc.envelope())

    def end(self) -> bytes:
        return DONE


_ENCODER = ChatStreamEncoder()


class ChatDialect:
    name = "chat"

    def decode(self, endpoint: Endpoint, raw: bytes) -> Decoded:
        if endpoint in _NO_BODY:
            return _NOTHING
        body = json_object(raw)
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise InvalidRequest("'stream' must be a boolean", param="stream")
        if endpoint is Endpoint.CHAT:
            check_chat_body(body)
        return Decoded(body)

    def encode_answer(self, content: bytes, outcome: Outcome) -> bytes:
        return content

    def stream_encoder(self, outcome: Outcome) -> ChatStreamEncoder:
        return _ENCODER

    def error_body(self, exc: GatewayError) -> bytes:
        return orjson.dumps(exc.envelope())


CHAT = ChatDialect()


def json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise InvalidRequest("request body is empty; send a JSON object", code="invalid_body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}",
                             code="invalid_body") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_body")
    return body


def check_chat_body(body: dict[str, Any]) -> None:
    """Raise a 400 naming the first field whose shape no adapter can translate."""
    messages = body.get("messages")
    if messages is not None:
        _expect(isinstance(messages, list), "messages", "a list of message objects")
        for i, message in enumerate(messages):
            _check_message(message, f"messages[{i}]")
    tools = body.get("tools")
    if tools is not None:
        _expect(isinstance(tools, list), "tools", "a list of tool objects")
        for i, tool in enumerate(tools):
            _check_tool(tool, f"tools[{i}]")


def _check_message(message: Any, where: str) -> None:
    _expect(isinstance(message, dict), where, "an object")
    _expect(isinstance(message.get("role"), str), f"{where}.role", "a string")
    content = message.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            _check_part(part, f"{where}.content[{j}]")
    else:
        _expect(content is None or isinstance(content, str), f"{where}.content",
                "a string, a list of content parts or null")
    calls = message.get("tool_calls")
    if calls is not None:
        _expect(isinstance(calls, list), f"{where}.tool_calls", "a list of tool calls")
        for j, call in enumerate(calls):
            _check_call(call, f"{where}.tool_calls[{j}]")


def _check_part(part: Any, where: str) -> None:
    _expect(isinstance(part, dict) and isinstance(part.get("type"), str), where,
            "a content part object with a 'type'")
    kind = part["type"]
    if kind == "text":
        _expect(isinstance(part.get("text"), str), f"{where}.text", "a string")
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        _expect(isinstance(url, str), f"{where}.image_url", "an object with a 'url' string")


def _check_call(call: Any, where: str) -> None:
    _expect(isinstance(call, dict), where, "an object")
    function = call.get("function")
    _expect(isinstance(function, dict), f"{where}.function", "an object")
    _expect(isinstance(function.get("name"), str), f"{where}.function.name", "a string")
    arguments = function.get("arguments")
    _expect(arguments is None or isinstance(arguments, str), f"{where}.function.arguments",
            "a JSON string")


def _check_tool(tool: Any, where: str) -> None:
    _expect(isinstance(tool, dict), where, "an object")
    function = tool.get("function")
    if function is None and tool.get("type") not in (None, "function"):
        return  # a provider's own tool type (web search, code execution): passed as is
    _expect(isinstance(function, dict), f"{where}.function", "an object")
    _expect(isinstance(function.get("name"), str) and bool(function["name"]),
            f"{where}.function.name", "a non-empty string")
    parameters = function.get("parameters")
    _expect(parameters is None or isinstance(parameters, dict), f"{where}.function.parameters",
            "a JSON Schema object")


def _expect(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise InvalidRequest(f"'{where}' must be {what}", param=where, code="invalid_body")

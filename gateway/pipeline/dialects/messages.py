"""Anthropic's Messages API as a client dialect (`POST /v1/messages`, `.../count_tokens`).

A Messages body is checked (400s in Anthropic's error shape, naming the field) and decoded
twice over: kept as it is (`Decoded.native`) for targets that speak Messages themselves
(Anthropic, Claude on Vertex and Bedrock: `Adapter.native_dialects`), and translated to the
canonical Chat Completions body every other adapter takes. Blocks with no Chat form (a
document by URL, search results, server tool blocks, types this module does not know) make
the request native-only (`Decoded.native_only`) rather than a 400: Anthropic may take them.
The rule for each field, translated, approximated or dropped, is in docs/dialects.md; the
answer and stream side is in messages_stream.py.
"""

from __future__ import annotations

from typing import Any, NoReturn

import orjson

from gateway.contracts.outcome import Outcome
from gateway.errors import GatewayError, InvalidRequest
from gateway.pipeline.dialects import Decoded
from gateway.pipeline.dialects.chat import json_object
from gateway.pipeline.dialects.messages_native import COUNT_TOKENS
from gateway.pipeline.dialects.messages_stream import MessagesStreamEncoder, error_json, message_of
from providers.base import Endpoint

_ROLES = ("user", "assistant", "system")  # Claude Code sends system messages inside messages
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
# Assistant blocks a chat target is not sent: the reasoning of an earlier Claude turn.
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


class MessagesDialect:
    name = "messages"

    def decode(self, endpoint: Endpoint, raw: bytes) -> Decoded:
        return decode_messages(raw, count_tokens=False)

    def encode_answer(self, content: bytes, outcome: Outcome) -> bytes:
        return orjson.dumps(message_of(orjson.loads(content), outcome.request))

    def stream_encoder(self, outcome: Outcome) -> MessagesStreamEncoder:
        return MessagesStreamEncoder(outcome.request)

    def error_body(self, exc: GatewayError) -> bytes:
        return error_json(exc)


class CountTokensDialect(MessagesDialect):
    """`/v1/messages/count_tokens`: the same body less `max_tokens` (and sampling)."""

    def decode(self, endpoint: Endpoint, raw: bytes) -> Decoded:
        return decode_messages(raw, count_tokens=True)


MESSAGES = MessagesDialect()
COUNT_TOKENS_DIALECT = CountTokensDialect()


def decode_messages(raw: bytes, *, count_tokens: bool) -> Decoded:
    body = json_object(raw)
    _expect(isinstance(body.get("model"), str) and bool(body["model"]), "model",
            "a non-empty string")
    if not count_tokens:
        tokens = body.get("max_tokens")
        if tokens is None:
            raise InvalidRequest("'max_tokens' is required: the Messages API has no default",
                                 param="max_tokens", code="invalid_body")
        _expect(type(tokens) is int and tokens >= 1, "max_tokens", "a whole number of at least 1")
        _expect(body.get("stream") is None or isinstance(body["stream"], bool), "stream",
                "a boolean")
    translation = _Translation()
    chat = translation.body(body, count_tokens)
    return Decoded(chat, body, translation.native_only)


class _Translation:
    """One body's translation to Chat Completions. A 400 for what is invalid anywhere; for
    what is valid but has no Chat form, `native_only` (the field and why) instead: only a
    native target may take the request."""

    def __init__(self) -> None:
        self.native_only: tuple[str, str] | None = None

    def untranslatable(self, where: str, why: str) -> None:
        if self.native_only is None:
            self.native_only = (where, why)

    def body(self, body: dict[str, Any], count_tokens: bool) -> dict[str, Any]:
        messages = self.system(body.get("system"))
        turns = _list(body.get("messages"), "messages", "a list of messages")
        for i, turn in enumerate(turns):
            messages += self.turn(turn, f"messages[{i}]")
        chat: dict[str, Any] = {"model": body["model"], "messages": messages}
        if not count_tokens:
            chat["max_completion_tokens"] = body["max_tokens"]
        if body.get("stream"):
            # Usage is always wanted: message_delta carries it.
            chat |= {"stream": True, "stream_options": {"include_usage": True}}
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                _expect(_is_number(body[name]), name, "a number")
                chat[name] = body[name]
        if body.get("top_k") is not None:
            _expect(type(body["top_k"]) is int, "top_k", "a whole number")
        stops = body.get("stop_sequences")
        if stops is not None:
            _expect(isinstance(stops, list) and all(isinstance(s, str) for s in stops),
                    "stop_sequences", "a list of strings")
            if stops:
                chat["stop"] = stops
        chat |= _metadata(body.get("metadata"))
        chat |= self.tools(body.get("tools"), body.get("tool_choice"))
        chat |= _output_format(body.get("output_config"))
        return chat

    def system(self, system: Any) -> list[dict[str, Any]]:
        if system is None:
            return []
        text = _text_of(system, "system")
        return [{"role": "system", "content": text}] if text else []

    def turn(self, turn: Any, where: str) -> list[dict[str, Any]]:
        _expect(isinstance(turn, dict), where, "a message object")
        role = turn.get("role")
        _expect(role in _ROLES, f"{where}.role", "'user' or 'assistant'")
        content = turn.get("content")
        _expect(isinstance(content, str | list), f"{where}.content",
                "a string or a list of content blocks")
        if role == "system":
            return [{"role": "system", "content": _text_of(content, f"{where}.content")}]
        if isinstance(content, str):
            return [{"role": role, "content": content}]
        blocks = [_block(b, f"{where}.content[{j}]") for j, b in enumerate(content)]
        if role == "assistant":
            return [self.assistant(blocks, where)]
        return self.user(blocks, where)

    def assistant(self, blocks: list[dict[str, Any]], where: str) -> dict[str, Any]:
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for j, block in enumerate(blocks):
            kind = block["type"]
            if kind == "text":
                texts.append(block["text"])
            elif kind == "tool_use":
                calls.append({"id": block["id"], "type": "function", "function": {
                    "name": block["name"], "arguments": orjson.dumps(block["input"]).decode()}})
            elif kind not in _DROPPED_BLOCKS:
                self.untranslatable(f"{where}.content[{j}]",
                                    f"an assistant '{kind}' block has no Chat Completions form")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
        if calls:
            message["tool_calls"] = calls
        return message

    def user(self, blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
        """Tool results become `tool` messages, before the rest of the turn (Chat wants a
        tool call's result right after the assistant message that made it)."""
        results: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for j, block in enumerate(blocks):
            at = f"{where}.content[{j}]"
            if block["type"] == "tool_result":
                text, images = self.tool_result(block, at)
                results.append({"role": "tool", "tool_call_id": block["tool_use_id"],
                                "content": text})
                parts += images  # a tool message holds text only: its images follow it
            else:
                part = self.part(block, at)
                if part is not None:
                    parts.append(part)
        if parts:
            single = len(parts) == 1 and parts[0]["type"] == "text"
            results.append({"role": "user", "content": parts[0]["text"] if single else parts})
        return results

    def tool_result(self, block: dict[str, Any],
                    where: str) -> tuple[str, list[dict[str, Any]]]:
        content = block.get("content")
        texts: list[str] = []
        images: list[dict[str, Any]] = []
        if isinstance(content, str):
            texts.append(content)
        elif content is not None:
            _expect(isinstance(content, list), f"{where}.content",
                    "a string or a list of content blocks")
            for k, inner in enumerate(content):
                part = self.part(_block(inner, f"{where}.content[{k}]"),
                                 f"{where}.content[{k}]")
                if part is not None and part["type"] == "text":
                    texts.append(part["text"])
                elif part is not None:
                    images.append(part)
        text = "\n".join(texts)
        if block.get("is_error"):
            text = f"(tool error) {text}"  # Chat has no error flag on a tool result
        return text, images

    def part(self, block: dict[str, Any], where: str) -> dict[str, Any] | None:
        kind = block["type"]
        if kind == "text":
            return {"type": "text", "text": block["text"]}
        if kind == "image":
            return {"type": "image_url", "image_url": {"url": _source_url(block, where)}}
        if kind == "document":
            return self.document(block, where)
        if kind in _DROPPED_BLOCKS:
            return None
        self.untranslatable(where, f"a '{kind}' block has no Chat Completions form")
        return None

    def document(self, block: dict[str, Any], where: str) -> dict[str, Any] | None:
        source = _object(block.get("source"), f"{where}.source")
        kind = source.get("type")
        if kind == "text":
            _expect(isinstance(source.get("data"), str), f"{where}.source.data", "a string")
            return {"type": "text", "text": source["data"]}
        if kind == "content":
            return {"type": "text", "text": _text_of(source.get("content"),
                                                     f"{where}.source.content")}
        if kind == "base64":
            _expect(isinstance(source.get("data"), str), f"{where}.source.data", "a string")
            media = source.get("media_type") or "application/pdf"
            name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
            return {"type": "file", "file": {"filename": name,
                                             "file_data": f"data:{media};base64,{source['data']}"}}
        self.untranslatable(f"{where}.source", f"a document by '{kind}' has no Chat "
                            "Completions form (send it base64-encoded)")
        return None

    def tools(self, tools: Any, choice: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if tools is not None:
            _expect(isinstance(tools, list), "tools", "a list of tools")
            functions = [f for i, t in enumerate(tools)
                         if (f := self.tool(t, f"tools[{i}]")) is not None]
            if functions:
                out["tools"] = functions
        if choice is None:
            return out
        _expect(isinstance(choice, dict) and isinstance(choice.get("type"), str),
                "tool_choice", "an object with a 'type'")
        kind = choice["type"]
        if kind == "tool":
            _expect(isinstance(choice.get("name"), str), "tool_choice.name", "a string")
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        else:
            _expect(kind in _TOOL_CHOICES, "tool_choice.type", "auto, any, tool or none")
            out["tool_choice"] = _TOOL_CHOICES[kind]
        if choice.get("disable_parallel_tool_use") and "tools" in out:
            out["parallel_tool_calls"] = False
        return out

    def tool(self, tool: Any, where: str) -> dict[str, Any] | None:
        _expect(isinstance(tool, dict), where, "a tool object")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            # A server tool (web search, bash, ...) runs at Anthropic: a chat target has none.
            _expect(isinstance(kind, str), f"{where}.type", "a string")
            return None
        name = tool.get("name")
        _expect(isinstance(name, str) and bool(name), f"{where}.name", "a non-empty string")
        _check_schema(tool.get("input_schema"), f"{where}.input_schema")
        function: dict[str, Any] = {"name": name, "parameters": tool["input_schema"]}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        return {"type": "function", "function": function}


def _block(value: Any, where: str) -> dict[str, Any]:
    """A content block whose shape is checked as far as every target needs it."""
    block = _object(value, where)
    _expect(isinstance(block.get("type"), str), f"{where}.type", "a string")
    kind = block["type"]
    if kind == "text":
        _expect(isinstance(block.get("text"), str), f"{where}.text", "a string")
    elif kind == "image":
        _source_url(block, where)
    elif kind == "tool_use":
        _expect(isinstance(block.get("id"), str), f"{where}.id", "a string")
        _expect(isinstance(block.get("name"), str), f"{where}.name", "a string")
        _expect(isinstance(block.get("input"), dict), f"{where}.input", "an object")
    elif kind == "tool_result":
        _expect(isinstance(block.get("tool_use_id"), str), f"{where}.tool_use_id", "a string")
    return block


def _source_url(block: dict[str, Any], where: str) -> str:
    source = _object(block.get("source"), f"{where}.source")
    if source.get("type") == "url":
        _expect(isinstance(source.get("url"), str), f"{where}.source.url", "a string")
        return str(source["url"])
    _expect(source.get("type") == "base64", f"{where}.source.type", "'base64' or 'url'")
    _expect(source.get("media_type") in _IMAGE_TYPES, f"{where}.source.media_type",
            "one of " + ", ".join(_IMAGE_TYPES))
    _expect(isinstance(source.get("data"), str), f"{where}.source.data", "a base64 string")
    return f"data:{source['media_type']};base64,{source['data']}"


def _text_of(content: Any, where: str) -> str:
    """A system prompt (or a system message): a string or text blocks, joined."""
    if isinstance(content, str):
        return content
    _expect(isinstance(content, list), where, "a string or a list of text blocks")
    texts = []
    for i, block in enumerate(content):
        _expect(isinstance(block, dict) and block.get("type") == "text"
                and isinstance(block.get("text"), str), f"{where}[{i}]", "a text block")
        texts.append(block["text"])
    return "\n\n".join(texts)


def _metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    _expect(isinstance(metadata, dict), "metadata", "an object")
    user = metadata.get("user_id")
    _expect(user is None or isinstance(user, str), "metadata.user_id", "a string")
    return {"user": user} if user else {}


def _output_format(config: Any) -> dict[str, Any]:
    """output_config.format (structured output) becomes response_format; its `effort` has no
    portable Chat field and is dropped."""
    if config is None:
        return {}
    _expect(isinstance(config, dict), "output_config", "an object")
    fmt = config.get("format")
    if fmt is None:
        return {}
    _expect(isinstance(fmt, dict) and fmt.get("type") == "json_schema",
            "output_config.format", "an object of type 'json_schema'")
    _check_schema(fmt.get("schema"), "output_config.format.schema")
    return {"response_format": {"type": "json_schema", "json_schema": {
        "name": "structured_output", "schema": fmt["schema"]}}}


def _check_schema(schema: Any, where: str) -> None:
    _expect(isinstance(schema, dict), where, "a JSON Schema object")
    _expect(schema.get("type") == "object", f"{where}.type", "'object'")
    _check_subschema(schema, where, 0)


# JSON Schema keywords whose value is one subschema, a map of them, or a list of them.
_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
        "propertyNames", "additionalItems", "unevaluatedProperties", "unevaluatedItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_TYPE_NAMES = "a JSON Schema type (" + ", ".join(sorted(_TYPES)) + ") or a list of them"
_MAX_DEPTH = 64


def _check_subschema(schema: Any, where: str, depth: int) -> None:
    """The shape of a JSON Schema, in one pass over it (a full meta-schema check costs ~4 ms
    a tool and seconds for a large one, on the event loop): what a provider would refuse
    (a bad `type`, `properties` that are not schemas, `required` that is not names) is a
    400 naming the path. Messages are only built for a failure: this runs on every tool of
    every request."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        _fail(where, "a JSON Schema (an object or a boolean)")
    if depth >= _MAX_DEPTH:
        _fail(where, f"nested at most {_MAX_DEPTH} schemas deep")
    kind = schema.get("type")
    if kind is not None and not (kind in _TYPES if isinstance(kind, str) else (
            isinstance(kind, list) and kind and all(k in _TYPES for k in kind))):
        _fail(f"{where}.type", _TYPE_NAMES)
    required = schema.get("required")
    if required is not None and not (isinstance(required, list)
                                     and all(isinstance(r, str) for r in required)):
        _fail(f"{where}.required", "a list of property names")
    if "enum" in schema and not isinstance(schema["enum"], list):
        _fail(f"{where}.enum", "a list")
    for name in _ONE:
        if name in schema and not (name == "items" and isinstance(schema[name], list)):
            _check_subschema(schema[name], f"{where}.{name}", depth + 1)
    for name in (*_LIST, "items"):
        if isinstance(schema.get(name), list) or (name != "items" and name in schema):
            entries = _list(schema[name], f"{where}.{name}", "a list of schemas")
            for i, entry in enumerate(entries):
                _check_subschema(entry, f"{where}.{name}[{i}]", depth + 1)
    for name in _MAP:
        if name in schema:
            for key, entry in _object(schema[name], f"{where}.{name}").items():
                _check_subschema(entry, f"{where}.{name}.{key}", depth + 1)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _object(value: Any, where: str) -> dict[str, Any]:
    _expect(isinstance(value, dict), where, "an object")
    return value  # type: ignore[no-any-return]  # checked just above


def _list(value: Any, where: str, what: str) -> list[Any]:
    _expect(isinstance(value, list), where, what)
    return value  # type: ignore[no-any-return]  # checked just above


def _expect(ok: bool, where: str, what: str) -> None:
    if not ok:
        _fail(where, what)


def _fail(where: str, what: str) -> NoReturn:
    raise InvalidRequest(f"'{where}' must be {what}", param=where, code="invalid_body")


__all__ = ["COUNT_TOKENS", "COUNT_TOKENS_DIALECT", "MESSAGES"]

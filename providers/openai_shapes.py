"""Builders for the OpenAI objects every translating adapter returns, and the message parts
they all read (data URLs, tool-call arguments), so each adapter only says what differs."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from providers.base import ConfigurationError, StreamState


def usage(prompt: int, completion: int, *, cache_read: int = 0, cache_write: int = 0,
          reasoning: int = 0) -> dict[str, Any]:
    """OpenAI usage; `prompt` already INCLUDES cache reads and writes (unlike Portkey's #1754)."""
    result: dict[str, Any] = {
        "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }
    if reasoning:
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    if cache_read:
        result["cache_read_input_tokens"] = cache_read
    if cache_write:
        result["cache_creation_input_tokens"] = cache_write
    return result


def count(raw: Any, key: str) -> int:
    """A token count from a provider's usage object: 0 when it, or the field, is missing,
    null or not a number (never an error mid-stream)."""
    value = raw.get(key) if isinstance(raw, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**63:
        return 0  # NaN and infinity fail the range check too
    return int(value)


def merge_counts(into: dict[str, Any], update: Any) -> dict[str, Any]:
    """Fold a later usage object into what earlier ones said, field by field. An explicit null
    keeps the earlier value: Anthropic's `message_delta` may carry `"input_tokens": null`
    after `message_start` gave the count."""
    if isinstance(update, Mapping):
        into.update((k, v) for k, v in update.items() if v is not None)
    return into


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def completion(*, response_id: str, model: str, created: int, content: str | None,
               tool_calls: list[dict[str, Any]], finish_reason: str | None,
               usage: dict[str, Any] | None, index: int = 0) -> dict[str, Any]:
    """A one-choice `chat.completion`; content is null when the model only called tools."""
    message: dict[str, Any] = {"role": "assistant",
                               "content": content if content or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    result: dict[str, Any] = {
        "id": response_id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": index, "message": message, "finish_reason": finish_reason,
                     "logprobs": None}],
    }
    if usage is not None:
        result["usage"] = usage
    return result


def chunk(state: StreamState, delta: dict[str, Any], finish_reason: str | None = None,
          index: int = 0) -> dict[str, Any]:
    return {"id": state.response_id, "object": "chat.completion.chunk",
            "created": state.created, "model": state.model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason,
                         "logprobs": None}]}


def usage_chunk(state: StreamState) -> dict[str, Any]:
    """OpenAI's final `choices: []` chunk; the relay hides it unless the client asked."""
    return {"id": state.response_id, "object": "chat.completion.chunk",
            "created": state.created, "model": state.model, "choices": [],
            "usage": state.usage}


def embeddings(vectors: Iterable[list[float]], *, model: str,
               prompt_tokens: int) -> dict[str, Any]:
    """Float vectors always: the OpenAI SDK asks for base64 by default and reads floats too."""
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """The texts of an embeddings request; token-id inputs have no translation."""
    value = body.get("input")
    items: list[Any] = value if isinstance(value, list) else [value]
    texts = [item for item in items if isinstance(item, str)]
    if not texts or len(texts) != len(items):
        raise ConfigurationError("'input' must be a string or a list of strings "
                                 "for this provider (token ids cannot be translated)")
    return texts


def text_of(content: Any) -> str:
    """The text of a message's content, whether a string or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and p.get("type") == "text")
    raise ConfigurationError("message content must be a string or a list of parts")


def parts_of(content: Any) -> list[dict[str, Any]]:
    """Content as a list of OpenAI parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return content
    raise ConfigurationError("message content must be a string or a list of parts")


def image_url(part: dict[str, Any]) -> str:
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise ConfigurationError("an image_url part needs image_url.url")
    return url


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:` URL, or None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise ConfigurationError("data URLs must be base64: data:<type>;base64,<data>")
    return header.removesuffix(";base64") or "application/octet-stream", data


def guess_media_type(url: str, default: str = "image/jpeg") -> str:
    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return guessed or default


def arguments(call: dict[str, Any]) -> dict[str, Any]:
    """A tool call's JSON arguments as an object ({} when empty)."""
    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise ConfigurationError(
            f"tool call '{function.get('name')}' has arguments that are not JSON") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"tool call '{function.get('name')}' arguments must be an object")
    return value


def function_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `function` objects of OpenAI tools; other tool types have no translation."""
    functions = []
    for tool in tools:
        if tool.get("type", "function") != "function" or not isinstance(tool.get("function"), dict):
            raise ConfigurationError(f"tool type '{tool.get('type')}' is not supported here; "
                                     "only function tools")
        if not isinstance(tool["function"].get("name"), str):
            raise ConfigurationError("each tool needs function.name")
        functions.append(tool["function"])
    return functions


def json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()

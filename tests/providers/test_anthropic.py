from __future__ import annotations

import json

import pytest

from providers.anthropic import (
    AnthropicAdapter,
    check_stream_end,
    error_of,
    event_chunks,
    messages_body,
    usage_of,
)
from providers.base import ConfigurationError, Endpoint, SSEEvent, StreamError, StreamState, Target
from tests.providers.replay import case_json, response, stream_chunks, tool_calls_of

USER = {"role": "user", "content": "hi"}


def test_system_and_developer_messages_anywhere_become_system_blocks() -> None:
    body = messages_body({"model": "c", "messages": [
        {"role": "system", "content": "a"}, USER, {"role": "developer", "content": "b"},
        {"role": "user", "content": "again"}]})
    assert body["system"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    # the two user turns around the developer message become one
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "text", "text": "again"}]}]


@pytest.mark.parametrize(("given", "sent"), [
    ({}, 4096), ({"max_tokens": 9}, 9), ({"max_completion_tokens": 7, "max_tokens": 9}, 7)])
def test_max_tokens_defaulted_and_max_completion_tokens_wins(given: dict, sent: int) -> None:
    assert messages_body({"messages": [USER], **given})["max_tokens"] == sent


@pytest.mark.parametrize(("given", "sent"), [(1.7, 1), (-0.5, 0), (0.3, 0.3)])
def test_temperature_clamped(given: float, sent: float) -> None:
    assert messages_body({"messages": [USER], "temperature": given})["temperature"] == sent


def test_stop_string_becomes_a_list_and_user_goes_to_metadata() -> None:
    body = messages_body({"messages": [USER], "stop": "END", "user": "u1"})
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u1"}


@pytest.mark.parametrize(("choice", "sent"), [
    ("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"})])
def test_tool_choice(choice: object, sent: dict) -> None:
    assert messages_body({"messages": [USER], "tool_choice": choice})["tool_choice"] == sent


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    body = messages_body({"messages": [USER], "parallel_tool_calls": False})
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    body = messages_body({"messages": [USER], "parallel_tool_calls": False,
                          "tool_choice": "required"})
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_pdf_data_url_becomes_a_document() -> None:
    part = {"type": "image_url", "image_url": {"url": "data:application/pdf;base64,JVBE"}}
    body = messages_body({"messages": [{"role": "user", "content": [part]}]})
    assert body["messages"][0]["content"] == [{"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]


def test_bad_tool_arguments_are_a_configuration_error() -> None:
    call = {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    with pytest.raises(ConfigurationError, match="not JSON"):
        messages_body({"messages": [USER, {"role": "assistant", "tool_calls": [call]}]})


def test_usage_counts_cache_reads_and_writes_in_prompt_tokens() -> None:
    usage = usage_of({"input_tokens": 10, "cache_read_input_tokens": 5000,
                      "cache_creation_input_tokens": 60, "output_tokens": 7})
    assert usage["prompt_tokens"] == 5070
    assert usage["total_tokens"] == 5077 == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 5000}


def test_parallel_tool_calls_stream_with_their_own_indices() -> None:
    """Portkey #1275: each tool_use block gets the next index, whatever its block index."""
    chunks, state = stream_chunks("anthropic", "tools")
    calls = tool_calls_of(chunks)
    assert sorted(calls) == [0, 1]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"city": "Paris"}, {"city": "London"}]
    whole = response("anthropic", "tools")["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in calls.values()] == [c["id"] for c in whole]
    assert state.finish_reason == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == state.usage


def test_stream_and_response_agree_for_every_case() -> None:
    for case in ("text", "tools", "tool_result", "image_length"):
        chunks, state = stream_chunks("anthropic", case)
        whole = response("anthropic", case)
        assert state.usage == whole["usage"]
        assert state.finish_reason == whole["choices"][0]["finish_reason"]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                       if c["choices"])
        assert text == (whole["choices"][0]["message"]["content"] or "")
        assert whole["choices"][0]["finish_reason"] == case_json(
            "anthropic", case)["expect"]["finish_reason"]


def test_error_event_raises_with_its_status() -> None:
    event = SSEEvent("error", '{"type":"error","error":{"type":"overloaded_error",'
                              '"message":"Overloaded"}}')
    with pytest.raises(StreamError) as info:
        event_chunks(event, StreamState())
    assert (info.value.error.status, info.value.error.message) == (529, "Overloaded")


def test_stream_without_message_stop_is_truncated() -> None:
    with pytest.raises(StreamError, match="before message_stop"):
        check_stream_end(StreamState())


def test_error_body() -> None:
    error = error_of(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                      "message": "bad"}})
    assert (error.status, error.message, error.type) == (400, "bad", "invalid_request_error")
    assert error_of(502, "<html>bad gateway</html>").message == "<html>bad gateway</html>"


def test_only_chat_is_served() -> None:
    with pytest.raises(ConfigurationError):
        AnthropicAdapter().build_request(Endpoint.EMBEDDINGS, {}, Target("anthropic"),
                                         stream=False)

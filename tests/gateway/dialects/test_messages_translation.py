"""The Messages dialect's pure parts: decoding a Messages body to the canonical chat body,
checking it, and encoding chat answers, streams and errors as Anthropic's; the native
stream watcher and its replay. No HTTP here (test_messages_sdk.py has the real clients)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.datastructures import Headers

from gateway.contracts.outcome import Outcome
from gateway.contracts.request import ParsedRequest
from gateway.errors import GatewayError, InvalidRequest, RateLimited, UpstreamStatus
from gateway.pipeline.dialects.messages import COUNT_TOKENS_DIALECT, MESSAGES
from gateway.pipeline.dialects.messages_native import (
    MESSAGES_NATIVE,
    MessageWatcher,
    count_prompt,
    replay_message,
)
from gateway.pipeline.dialects.messages_stream import MessagesStreamEncoder, message_of
from providers.base import Endpoint, ProviderError, StreamError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "anthropic"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PNG = "iVBORw0KGgo="


def decode(body: dict[str, Any]) -> dict[str, Any]:
    decoded = MESSAGES.decode(Endpoint.CHAT, orjson.dumps(body))
    assert decoded.native == body  # the client's own body, kept for native targets
    assert decoded.body is not None
    return decoded.body


def base(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]} | fields


def request(body: dict[str, Any] | None = None) -> ParsedRequest:
    return ParsedRequest(request_id="0b5e2a4c-1d2e-4f00-8a9b-0123456789ab", trace_id="t",
                         endpoint=Endpoint.CHAT, method="POST", path="messages", query="",
                         headers=Headers({}), raw_body=b"", body=body or {"model": "asked"},
                         dialect="messages")


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs; every data line must come with its event line."""
    found = []
    for frame in raw.decode().split("\n\n"):
        if not frame:
            continue
        name, data = frame.split("\n")
        assert name.startswith("event: ") and data.startswith("data: "), frame
        found.append((name[7:], orjson.loads(data[6:])))
    return found


# -- requests --------------------------------------------------------------------------------

def test_text_system_stops_sampling_and_user() -> None:
    chat = decode(base(system=[{"type": "text", "text": "Be brief.",
                                "cache_control": {"type": "ephemeral"}},
                               {"type": "text", "text": "Be kind."}],
                       stop_sequences=["END"], temperature=0.2, top_p=0.9, top_k=5,
                       metadata={"user_id": "user-7"}, stream=True))
    assert chat == {
        "model": "m", "max_completion_tokens": 64,
        "messages": [{"role": "system", "content": "Be brief.\n\nBe kind."},
                     {"role": "user", "content": "hi"}],
        "stream": True, "stream_options": {"include_usage": True},
        "temperature": 0.2, "top_p": 0.9, "stop": ["END"], "user": "user-7"}


def test_images_and_a_system_message_inside_messages() -> None:
    chat = decode(base(messages=[
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}]},
        {"role": "system", "content": [{"type": "text", "text": "Reminder: be brief."}]},
    ]))
    assert chat["messages"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]},
        {"role": "system", "content": "Reminder: be brief."}]


def test_tool_round_trip_maps_tool_use_and_tool_result() -> None:
    chat = decode(base(
        tools=[{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA},
               {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me look.", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1",
                 "content": [{"type": "text", "text": "18C"},
                             {"type": "image", "source": {"type": "base64",
                                                          "media_type": "image/png",
                                                          "data": PNG}}]},
                {"type": "text", "text": "And tomorrow?"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2",
                                          "content": "no such city", "is_error": True}]},
        ]))
    # Only the custom tool: a server tool (web search) runs at Anthropic.
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "parameters": SCHEMA, "description": "Weather"}}]
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    assert chat["messages"][1:] == [
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "text", "text": "And tomorrow?"}]},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "(tool error) no such city"}]


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"},
     {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    tools = [{"name": "get_weather", "input_schema": SCHEMA}]
    assert decode(base(tools=tools, tool_choice=choice))["tool_choice"] == expected


def test_documents_text_and_pdf() -> None:
    chat = decode(base(messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "plain words"}},
        {"type": "document", "title": "r.pdf", "source": {
            "type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]}]))
    assert chat["messages"][0]["content"] == [
        {"type": "text", "text": "plain words"},
        {"type": "file", "file": {"filename": "r.pdf",
                                  "file_data": "data:application/pdf;base64,JVBERi0="}}]


def test_claude_code_body_loses_everything_a_chat_target_cannot_take() -> None:
    """What Claude Code 2.1 sends (reference 3.2a): none of thinking, context_management,
    output_config.effort, cache_control or top_k reach a chat body; the rest maps."""
    tools = [{"name": f"Tool{i}", "description": f"tool {i}", "input_schema": {
        "type": "object", "properties": {"arg": {"type": "string"}},
        "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}}
        for i in range(24)]
    body = base(
        max_tokens=32000, stream=True, tools=tools,
        system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
                {"type": "text", "text": "You are Claude Code.",
                 "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Instructions.",
                 "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        messages=[{"role": "system", "content": "<system-reminder>ctx</system-reminder>"},
                  {"role": "user", "content": [{"type": "text", "text": "Say hi",
                                                "cache_control": {"type": "ephemeral"}}]}],
        thinking={"type": "adaptive"}, output_config={"effort": "high"},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        metadata={"user_id": '{"device_id":"abc","session_id":"s1"}'},
        cache_control={"type": "ephemeral"})
    chat = decode(body)
    assert set(chat) == {"model", "max_completion_tokens", "messages", "stream",
                         "stream_options", "tools", "user"}
    assert len(chat["tools"]) == 24
    assert [m["role"] for m in chat["messages"]] == ["system", "system", "user"]
    assert chat["messages"][2] == {"role": "user", "content": "Say hi"}
    assert "cache_control" not in orjson.dumps(chat).decode()


def test_schema_checks_are_linear_in_the_schema() -> None:
    """A huge or deep schema costs one pass (the meta-schema check took 1.3 s for this one);
    nesting past the cap is a 400, not a recursion error."""
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 50}
                                             for i in range(2000)}}
    assert decode(base(tools=[{"name": "f", "input_schema": wide}]))["tools"]
    deep: dict[str, Any] = {"type": "object"}
    for _ in range(70):  # orjson itself refuses JSON nested past 254
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(InvalidRequest) as info:
        decode(base(tools=[{"name": "f", "input_schema": deep}]))
    assert "nested at most" in info.value.message


def test_structured_output_becomes_response_format() -> None:
    chat = decode(base(output_config={"effort": "low", "format": {
        "type": "json_schema", "schema": SCHEMA}}))
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "structured_output", "schema": SCHEMA}}


def test_count_tokens_needs_no_max_tokens() -> None:
    decoded = COUNT_TOKENS_DIALECT.decode(Endpoint.CHAT, orjson.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}))
    assert decoded.body == {"model": "m", "messages": [{"role": "user",
                                                        "content": "hello there"}]}
    assert count_prompt(decoded.body) == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"model": "m", "messages": []}, "max_tokens"),
    (base(max_tokens="many"), "max_tokens"),
    (base(model=""), "model"),
    (base(messages="hi"), "messages"),
    (base(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
    (base(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (base(messages=[{"role": "user", "content": [{"text": "no type"}]}]),
     "messages[0].content[0].type"),
    (base(messages=[{"role": "user", "content": [{"type": "text"}]}]),
     "messages[0].content[0].text"),
    (base(messages=[{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/tiff", "data": "x"}}]}]),
     "messages[0].content[0].source.media_type"),
    (base(messages=[{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}]),
     "messages[0].content[0].input"),
    (base(system=[{"type": "image"}]), "system[0]"),
    (base(tools=[{"name": "f"}]), "tools[0].input_schema"),
    (base(tools=[{"name": "f", "input_schema": {"type": "array"}}]), "tools[0].input_schema.type"),
    (base(tools=[{"name": "f", "input_schema": {
        "type": "object", "properties": {"a": {"type": "strang"}}}}]),
     "tools[0].input_schema.properties.a.type"),
    (base(tools=[{"name": "f", "input_schema": {
        "type": "object", "properties": {"a": {"type": "array", "items": [{"type": 5}]}}}}]),
     "tools[0].input_schema.properties.a.items[0].type"),
    (base(tools=[{"name": "f", "input_schema": {
        "type": "object", "required": "a", "properties": {"a": {"anyOf": [True, 3]}}}}]),
     "tools[0].input_schema.required"),
    (base(tools=[{"name": "f", "input_schema": {
        "type": "object", "properties": {"a": {"anyOf": [True, 3]}}}}]),
     "tools[0].input_schema.properties.a.anyOf[1]"),
    (base(tools=[{"name": "f", "input_schema": {"type": "object", "properties": []}}]),
     "tools[0].input_schema.properties"),
    (base(tools=[{"input_schema": SCHEMA}]), "tools[0].name"),
    (base(tool_choice={"type": "sometimes"}), "tool_choice.type"),
    (base(stop_sequences="END"), "stop_sequences"),
    (base(temperature="hot"), "temperature"),
    (base(metadata={"user_id": 7}), "metadata.user_id"),
    (base(stream="yes"), "stream"),
])
def test_bad_bodies_are_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        MESSAGES.decode(Endpoint.CHAT, orjson.dumps(body))
    assert info.value.param == field
    assert field in info.value.message
    shaped = orjson.loads(MESSAGES.error_body(info.value))
    assert shaped == {"type": "error", "error": {"type": "invalid_request_error",
                                                 "message": info.value.message}}


@pytest.mark.parametrize(("block", "field"), [
    ({"type": "document", "source": {"type": "url", "url": "https://e.com/a.pdf"}},
     "messages[0].content[0].source"),
    ({"type": "search_result", "source": "s", "title": "t", "content": []},
     "messages[0].content[0]"),
])
def test_blocks_without_a_chat_form_are_native_only(block: dict[str, Any], field: str) -> None:
    """Valid for Anthropic, so not a 400 at decoding: a target that must translate refuses
    it (prepare.py), a native one takes it."""
    decoded = MESSAGES.decode(Endpoint.CHAT, orjson.dumps(base(
        messages=[{"role": "user", "content": [block]}])))
    assert decoded.native_only is not None and decoded.native_only[0] == field


@pytest.mark.parametrize(("exc", "kind"), [
    (InvalidRequest("x"), "invalid_request_error"),
    (RateLimited("x"), "rate_limit_error"),
    (UpstreamStatus("anthropic", ProviderError(529, "busy", "overloaded_error")),
     "overloaded_error"),
    (UpstreamStatus("openai", ProviderError(503, "down", "server_error")), "api_error"),
    (UpstreamStatus("openai", ProviderError(402, "pay", None)), "billing_error"),
    (UpstreamStatus("openai", ProviderError(422, "no", None)), "invalid_request_error"),
])
def test_error_type_per_status(exc: GatewayError, kind: str) -> None:
    assert orjson.loads(MESSAGES.error_body(exc))["error"]["type"] == kind


# -- answers ---------------------------------------------------------------------------------

def test_completion_becomes_a_message() -> None:
    completion = {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking.", "reasoning_content": "Think.",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {
                "name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function", "function": {
                    "name": "get_weather", "arguments": "not json"}}]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                  "prompt_tokens_details": {"cached_tokens": 60}}}
    message = orjson.loads(MESSAGES.encode_answer(orjson.dumps(completion), Outcome(request())))
    assert message == {
        "id": "msg_0b5e2a4c1d2e4f008a9b0123456789ab", "type": "message", "role": "assistant",
        "model": "gpt-4o-2024", "stop_reason": "tool_use", "stop_sequence": None,
        "content": [
            {"type": "thinking", "thinking": "Think.", "signature": ""},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}],
        "usage": {"input_tokens": 40, "output_tokens": 20, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 60}}


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"),
    (None, "end_turn"), ("weird", "end_turn")])
def test_finish_reasons(finish: str | None, stop: str) -> None:
    body = {"choices": [{"message": {"content": "x"}, "finish_reason": finish}]}
    assert message_of(body, request())["stop_reason"] == stop


# -- streams ---------------------------------------------------------------------------------

def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion.chunk", "model": "gpt", "choices": choices,
            **extra}


def stream(chunks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    encoder = MessagesStreamEncoder(request())
    return events(b"".join(encoder.chunk(c) for c in chunks) + encoder.end())


def test_text_stream_event_sequence() -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    seen = stream([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}),
                   chunk({"content": "lo"}), chunk({}, "stop"), chunk(None, usage=usage),
                   chunk({"content": "after the end"})])
    assert [name for name, _ in seen] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in seen)
    start = seen[0][1]["message"]
    assert start["id"] == "msg_0b5e2a4c1d2e4f008a9b0123456789ab" and start["content"] == []
    assert start["stop_reason"] is None and start["model"] == "gpt"
    assert seen[1][1] == {"type": "content_block_start", "index": 0,
                          "content_block": {"type": "text", "text": ""}}
    assert seen[3][1]["delta"] == {"type": "text_delta", "text": "lo"}
    assert seen[5][1] == {"type": "message_delta",
                          "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                          "usage": {"input_tokens": 9, "output_tokens": 2,
                                    "cache_creation_input_tokens": 0,
                                    "cache_read_input_tokens": 0}}


def test_reasoning_text_and_two_tool_calls_get_one_block_each() -> None:
    seen = stream([
        chunk({"reasoning_content": "Hmm."}),
        chunk({"content": "Both."}),
        # content and a tool call's start in one chunk: split, text first
        chunk({"content": " Now:", "tool_calls": [{"index": 0, "id": "call_a", "type":
                                                     "function", "function": {
                                                         "name": "f", "arguments": '{"x"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {
            "name": "g", "arguments": "{}"}}]}),
        chunk({}, "tool_calls")])
    kinds = [(n, d.get("index"), (d.get("content_block") or d.get("delta") or {}).get("type"))
             for n, d in seen]
    assert kinds == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"), ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"), ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"), ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"), ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"), ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3, None),
        ("message_delta", None, None), ("message_stop", None, None)]
    assert seen[8][1]["content_block"] == {"type": "tool_use", "id": "call_a", "name": "f",
                                           "input": {}}
    assert "".join(d["delta"]["partial_json"] for _, d in seen[9:11]) == '{"x": 1}'
    assert seen[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_chunk_with_content_and_finish_loses_nothing() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    seen = stream([chunk({"content": "All at once."}, "stop", usage=usage)])
    assert [n for n, _ in seen] == ["message_start", "content_block_start",
                                    "content_block_delta", "content_block_stop",
                                    "message_delta", "message_stop"]
    assert seen[2][1]["delta"]["text"] == "All at once."


def test_hook_results_pass_as_their_own_event_and_errors_are_anthropic_events() -> None:
    encoder = MessagesStreamEncoder(request())
    assert events(encoder.chunk({"hook_results": {"before_request_hooks": []}})) == [
        ("hook_results", {"hook_results": {"before_request_hooks": []}})]
    error = encoder.error(UpstreamStatus("openai", ProviderError(429, "slow down")))
    assert events(error) == [("error", {"type": "error", "error": {
        "type": "rate_limit_error", "message": "openai error: slow down"}})]


def test_an_empty_stream_still_ends_as_a_message() -> None:
    assert [n for n, _ in stream([])] == ["message_start", "message_delta", "message_stop"]


# -- native streams --------------------------------------------------------------------------

def fixture_events(case: str) -> list[dict[str, Any]]:
    raw = (FIXTURES / case / "stream.sse").read_bytes()
    return [data for _, data in events(raw)]


def test_watcher_reads_usage_text_and_the_whole_message() -> None:
    watcher = MESSAGES_NATIVE.stream("messages")
    text = "".join(watcher.event(e) for e in fixture_events("tools"))
    watcher.end()
    assert text == 'I\'ll check both cities.{"city": "Paris"}{"city": "London"}'
    assert watcher.usage is not None and watcher.usage["prompt_tokens"] == 380
    assert watcher.usage["completion_tokens"] == 96
    whole = watcher.result()
    recorded = orjson.loads((FIXTURES / "tools" / "response.json").read_bytes())
    assert whole == recorded


def test_replay_streams_what_the_watcher_reads_back() -> None:
    recorded = orjson.loads((FIXTURES / "tools" / "response.json").read_bytes())
    watcher = MessageWatcher()
    for event in replay_message(recorded):
        watcher.event(event)
    assert watcher.result() == recorded


def test_watcher_raises_on_error_events_and_on_a_cut() -> None:
    watcher = MessageWatcher()
    with pytest.raises(StreamError) as info:
        watcher.event({"type": "error", "error": {"type": "overloaded_error",
                                                  "message": "Overloaded"}})
    assert info.value.error.status == 529
    with pytest.raises(StreamError):
        MessageWatcher().end()


def test_count_tokens_usage_bills_nothing() -> None:
    assert MESSAGES_NATIVE.usage("messages/count_tokens", {"input_tokens": 500}) == {
        "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

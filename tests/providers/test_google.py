from __future__ import annotations

import pytest

from providers.base import ConfigurationError, Endpoint, SSEEvent, StreamError, StreamState, Target
from providers.google import (
    GoogleAdapter,
    completion_of,
    contents,
    error_of,
    event_chunks,
    gemini_body,
    stream_end,
)
from tests.providers.replay import response, stream_chunks, tool_calls_of

CALL = {"id": "call_1", "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'}}


def test_every_system_message_goes_to_system_instruction_and_turns_merge() -> None:
    out = contents([{"role": "user", "content": "a"}, {"role": "system", "content": "s1"},
                    {"role": "user", "content": "b"}, {"role": "developer", "content": "s2"}])
    assert out["systemInstruction"] == {"parts": [{"text": "s1"}, {"text": "s2"}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]


def test_tool_results_carry_the_real_function_name() -> None:
    out = contents([{"role": "user", "content": "q"},
                    {"role": "assistant", "content": "Let me look.", "tool_calls": [CALL]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "[1, 2]"}])
    assert out["contents"][1] == {"role": "model", "parts": [
        {"text": "Let me look."}, {"functionCall": {"name": "lookup", "args": {"q": "x"}}}]}
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "lookup", "response": {"result": [1, 2]}}}]


def test_tool_result_for_an_unknown_call_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown tool_call_id 'nope'"):
        contents([{"role": "tool", "tool_call_id": "nope", "content": "x"}])


def test_generation_config_and_response_format() -> None:
    body = gemini_body({"messages": [{"role": "user", "content": "x"}], "temperature": 0.2,
                        "top_k": 3, "response_format": {"type": "json_schema", "json_schema": {
                            "name": "o", "schema": {"type": "object"}}}})
    assert body["generationConfig"] == {"temperature": 0.2, "topK": 3,
                                        "responseMimeType": "application/json",
                                        "responseJsonSchema": {"type": "object"}}


def test_function_calls_finish_as_tool_calls() -> None:
    whole = response("google", "tools")
    assert whole["choices"][0]["finish_reason"] == "tool_calls"
    chunks, state = stream_chunks("google", "tools")
    assert state.finish_reason == "tool_calls"
    calls = tool_calls_of(chunks)
    assert sorted(calls) == [0, 1]
    assert [c["id"] for c in calls.values()] == [
        c["id"] for c in whole["choices"][0]["message"]["tool_calls"]]


@pytest.mark.parametrize(("reason", "mapped"), [
    ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("STOP", "stop"),
    ("SOMETHING_NEW", "stop")])
def test_finish_reasons(reason: str, mapped: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert completion_of(body, now=0, response_id="r", model="m")["choices"][0][
        "finish_reason"] == mapped


def test_usage_counts_thoughts_as_completion_and_keeps_cached() -> None:
    chunks, state = stream_chunks("google", "tools")
    assert state.usage["completion_tokens"] == 80
    assert state.usage["completion_tokens_details"] == {"reasoning_tokens": 50}
    assert chunks[-1] == {"id": "tOolsRespId01", "object": "chat.completion.chunk",
                          "created": chunks[-1]["created"], "model": "gemini-2.5-flash",
                          "choices": [], "usage": state.usage}
    assert response("google", "text")["usage"]["prompt_tokens_details"] == {
        "cached_tokens": 2048}


def test_stream_without_finish_reason_is_truncated() -> None:
    state = StreamState()
    event_chunks(SSEEvent(data='{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}'), state)
    with pytest.raises(StreamError, match="before a finishReason"):
        stream_end(state)


def test_error_event_in_a_stream_takes_the_rpc_status() -> None:
    with pytest.raises(StreamError) as info:
        event_chunks(SSEEvent(data='{"error":{"code":429,"message":"Quota","status":'
                                   '"RESOURCE_EXHAUSTED"}}'), StreamState())
    assert info.value.error.status == 429
    assert error_of(403, [{"error": {"message": "denied", "status": "PERMISSION_DENIED"}}]
                    ).message == "denied"


def test_blocked_prompt_is_an_error_not_an_empty_answer() -> None:
    with pytest.raises(StreamError, match="SAFETY"):
        completion_of({"promptFeedback": {"blockReason": "SAFETY"}}, now=0, response_id="r",
                      model="m")


def test_urls_and_key_header() -> None:
    adapter = GoogleAdapter()
    target = Target("google", api_key="k")
    chat = adapter.build_request(Endpoint.CHAT, {"model": "gemini-2.5-flash", "messages": []},
                                 target, stream=True)
    assert chat.url == ("https://generativelanguage.googleapis.com/v1beta/models/"
                        "gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert chat.headers["x-goog-api-key"] == "k" and "k" not in chat.url.split("/")[-1]
    embed = adapter.build_request(Endpoint.EMBEDDINGS, {"model": "e", "input": "x"}, target,
                                  stream=False)
    assert embed.url.endswith("/v1beta/models/e:batchEmbedContents")
    with pytest.raises(ConfigurationError, match="token ids"):
        adapter.build_request(Endpoint.EMBEDDINGS, {"model": "e", "input": [[1, 2]]}, target,
                              stream=False)


def test_thought_signatures_ride_in_the_tool_call_id_and_come_back() -> None:
    whole = response("google", "tools")["choices"][0]["message"]["tool_calls"]
    assert whole[0]["id"] == "call_tOolsRespId01_0__thought__CiQB0e2Kb7xE3b9n"
    assert whole[1]["id"] == "call_tOolsRespId01_1"  # unsigned calls carry no signature
    chunks, _ = stream_chunks("google", "tools")
    assert [c["id"] for c in tool_calls_of(chunks).values()] == [c["id"] for c in whole]
    out = contents([{"role": "user", "content": "q"},
                    {"role": "assistant", "tool_calls": whole},
                    {"role": "tool", "tool_call_id": whole[0]["id"], "content": "18"}])
    assert out["contents"][1]["parts"][0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": "CiQB0e2Kb7xE3b9n"}
    assert "thoughtSignature" not in out["contents"][1]["parts"][1]
    assert out["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather"

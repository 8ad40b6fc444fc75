"""Responses ⇄ Chat Completions translation, without a server: the request decoder, the
Response object built from a chat answer, and the stream encoder (checked against the openai
SDK's own stream accumulator)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.contracts.outcome import Outcome
from gateway.errors import InvalidRequest, UpstreamUnreachable
from gateway.pipeline.dialects.responses import ResponsesTurn
from gateway.pipeline.dialects.responses_native import RESPONSES_NATIVE, replay_response
from gateway.pipeline.dialects.responses_request import decode_request, items_to_messages
from gateway.store.responses import Chain
from providers.base import Endpoint, StreamError

EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
# What the pipeline hands the dialect with an answer; the Responses dialect reads only what
# the target was sent (nothing clamped here), never the request.
ANSWERED = Outcome(None)  # type: ignore[arg-type]


def turn_for(body: dict[str, Any], owner: str | None = "key:k1") -> ResponsesTurn:
    turn = ResponsesTurn()
    turn.decode(Endpoint.CHAT, orjson.dumps(body))
    if owner is not None:
        turn.continue_from(owner, None, None)
    return turn


def bad(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        decode_request(body)
    return caught.value


# --- request ----------------------------------------------------------------------------

def test_string_input_and_instructions_become_system_then_user():
    request = decode_request({"model": "m", "input": "Hi", "instructions": "Be terse",
                              "max_output_tokens": 50, "temperature": 0.2, "top_p": 0.9,
                              "user": "u1", "metadata": {"team": "a"}})
    assert request.body() == {
        "model": "m", "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 50,
        "user": "u1", "messages": [{"role": "system", "content": "Be terse"},
                                   {"role": "user", "content": "Hi"}]}
    (item,) = request.input_items
    assert item["id"].startswith("msg_") and item["role"] == "user"
    assert item["content"] == [{"type": "input_text", "text": "Hi"}]
    assert request.echo["metadata"] == {"team": "a"}  # echoed, not sent upstream
    assert request.store is True and request.stream is False


def test_items_with_text_and_image_parts_and_roles():
    request = decode_request({"input": [
        {"role": "developer", "content": "Rules"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
        ]},
        {"type": "message", "role": "assistant", "id": "msg_prior", "status": "completed",
         "content": [{"type": "output_text", "text": "A cat.", "annotations": []}]},
        {"role": "user", "content": [{"type": "input_text", "text": "Sure?"}]},
    ]})
    assert request.body()["messages"] == [
        {"role": "system", "content": "Rules"},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA",
                                               "detail": "low"}}]},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "Sure?"},
    ]
    assert request.input_items[2]["id"] == "msg_prior"  # given ids are kept
    assert all(item["id"] for item in request.input_items)


def test_function_calls_merge_into_one_assistant_turn_before_their_outputs():
    request = decode_request({"input": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "message", "role": "assistant", "content": "Checking."},
        {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "weather",
         "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_b", "name": "weather",
         "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_b",
         "output": [{"type": "input_text", "text": "rain"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ]})
    assert request.body()["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_b", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "rain"},
    ]
    ids = [item["id"] for item in request.input_items]
    assert ids[2] == "fc_1" and ids[3].startswith("fc_") and ids[6] == "rs_1"


def test_tools_formats_and_reasoning():
    request = decode_request({
        "input": "x", "stream": True, "parallel_tool_calls": False,
        "tools": [
            {"type": "function", "name": "get_weather", "description": "Weather",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
             "strict": True},
            {"type": "web_search"},
            {"type": "namespace", "name": "agents", "tools": [
                {"type": "function", "name": "close_agent", "parameters": {"type": "object"}}]},
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "city", "strict": True,
                            "schema": {"type": "object"}}, "verbosity": "low"},
        "reasoning": {"effort": "high", "summary": "auto"},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k", "truncation": "auto",
        "client_metadata": {"a": "b"}, "context_management": [{"type": "compaction"}],
    })
    body = request.body()
    assert body["tools"] == [
        {"type": "function", "function": {
            "name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "close_agent",
                                          "parameters": {"type": "object"}}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "city", "schema": {"type": "object"}, "strict": True}}
    assert body["reasoning_effort"] == "high"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    for dropped in ("include", "prompt_cache_key", "truncation", "client_metadata",
                    "context_management", "text", "reasoning", "metadata", "verbosity"):
        assert dropped not in body
    assert request.namespaces == {"close_agent": "agents"}
    assert [t["type"] for t in request.echo["tools"]] == ["function", "namespace"]


def test_json_object_and_no_tools_drop_tool_choice():
    body = decode_request({"input": "x", "text": {"format": {"type": "json_object"}},
                           "tool_choice": "required", "parallel_tool_calls": True}).body()
    assert body["response_format"] == {"type": "json_object"}
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


@pytest.mark.parametrize(("body", "param"), [
    ({}, "input"),
    ({"input": 5}, "input"),
    ({"input": "x", "model": 3}, "model"),
    ({"input": "x", "stream": "yes"}, "stream"),
    ({"input": "x", "store": 1}, "store"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "x", "temperature": "hot"}, "temperature"),
    ({"input": "x", "metadata": {"a": 1}}, "metadata"),
    ({"input": "x", "previous_response_id": ""}, "previous_response_id"),
    ({"input": ["hi"]}, "input[0]"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"input": [{"role": "user", "content": 4}]}, "input[0].content"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "input[0].content[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].image_url"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "u"}]}]},
     "input[0].content[0].file_data"),
    ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
     "input[0].call_id"),
    ({"input": [{"type": "function_call_output", "call_id": "c",
                 "output": [{"type": "input_image", "image_url": "u"}]}]}, "input[0].output[0]"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": "x", "tools": [{"type": "function", "name": ""}]}, "tools[0].name"),
    ({"input": "x", "tools": [{"type": "function", "name": "f", "parameters": "{}"}]},
     "tools[0].parameters"),
    ({"input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": "always"},
     "tool_choice"),
    ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}},
     "text.format.schema"),
    ({"input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
])
def test_bad_fields_are_400s_naming_them(body: dict[str, Any], param: str):
    error = bad(body)
    assert error.status == 400 and error.param == param, error.message
    assert param.split("[")[0].split(".")[0] in error.message


def test_items_to_messages_rebuilds_stored_output_as_one_assistant_turn():
    output = [{"type": "reasoning", "id": "rs_1", "summary": []},
              {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}]},
              {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
               "arguments": ""}]
    assert items_to_messages(output) == [{"role": "assistant", "content": "Let me look.",
                                          "tool_calls": [{"id": "call_1", "type": "function",
                                                          "function": {"name": "f",
                                                                       "arguments": "{}"}}]}]


# --- Response object --------------------------------------------------------------------

def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-upstream", "object": "chat.completion", "model": "m-upstream",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                  "prompt_tokens_details": {"cached_tokens": 4},
                  "completion_tokens_details": {"reasoning_tokens": 2}}, **extra})


def encode(turn: ResponsesTurn, content: bytes) -> dict[str, Any]:
    encoded = turn.encode_answer(content, ANSWERED)
    body: dict[str, Any] = orjson.loads(encoded)
    Response.model_validate(body)  # the SDK's own model accepts it
    return body


def test_text_answer_becomes_a_response_with_minted_ids_and_usage():
    turn = turn_for({"model": "m", "input": "Hi", "instructions": "Be terse",
                     "metadata": {"a": "b"}, "temperature": 0.5})
    body = encode(turn, completion({"role": "assistant", "content": "Hello!"}))
    assert body["id"] == turn.id and body["id"].startswith("resp_")
    assert "chatcmpl" not in orjson.dumps(body).decode()
    assert body["object"] == "response" and body["status"] == "completed"
    assert body["model"] == "m-upstream" and body["instructions"] == "Be terse"
    assert body["metadata"] == {"a": "b"} and body["temperature"] == 0.5
    (item,) = body["output"]
    assert item["type"] == "message" and item["id"].startswith("msg_")
    assert item["content"] == [{"type": "output_text", "text": "Hello!", "annotations": [],
                                "logprobs": []}]
    assert body["output_text"] == "Hello!"
    assert body["usage"] == {"input_tokens": 12,
                             "input_tokens_details": {"cached_tokens": 4,
                                                      "cache_write_tokens": 0},
                             "output_tokens": 5,
                             "output_tokens_details": {"reasoning_tokens": 2},
                             "total_tokens": 17}
    record = turn.record
    assert record is not None and record.id == turn.id and record.owner == "key:k1"
    assert record.root_id == turn.id and record.depth == 0
    assert record.input_items == turn.request.input_items
    assert record.output_items == body["output"]


def test_tool_calls_reasoning_and_truncation():
    turn = turn_for({"input": "x", "tools": [
        {"type": "namespace", "name": "ns", "description": "tools",
         "tools": [{"type": "function", "name": "f"}]}]})
    body = encode(turn, completion({
        "role": "assistant", "content": None, "reasoning_content": "thinking",
        "tool_calls": [{"id": "call_up", "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'}}]}, "length"))
    reasoning, call = body["output"]
    assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "thinking"}]
    assert call["type"] == "function_call" and call["id"].startswith("fc_")
    assert call["call_id"] == "call_up" and call["arguments"] == '{"a":1}'
    assert call["namespace"] == "ns"
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}


def test_store_false_or_no_owner_keeps_no_record_and_hook_results_are_kept():
    turn = turn_for({"input": "x", "store": False})
    body = encode(turn, completion({"role": "assistant", "content": "ok"},
                                   hook_results={"before_request_hooks": []}))
    assert body["store"] is False and turn.record is None
    assert body["hook_results"] == {"before_request_hooks": []}


# --- stream -----------------------------------------------------------------------------

def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "model": "m-up",
            "choices": choices, **extra}


def run_stream(turn: ResponsesTurn, chunks: list[dict[str, Any]],
               fail: Exception | None = None) -> list[dict[str, Any]]:
    encoder = turn.stream_encoder(ANSWERED)
    raw = b"".join(encoder.chunk(c) for c in chunks)
    raw += encoder.error(fail) if fail is not None else encoder.end()  # type: ignore[arg-type]
    events = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        name, data = block.split("\n")
        assert name.startswith("event: ") and data.startswith("data: ")
        event = orjson.loads(data[len("data: "):])
        assert event["type"] == name[len("event: "):]
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def accumulate(events: list[dict[str, Any]]) -> Any:
    """The response the openai SDK's `responses.stream()` state machine makes of the events
    (it raises on a missing response.created, an unknown output_index, an item left open)."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=[], text_format=omit)
    for event in events:
        state.handle_event(EVENTS.validate_python(event))
    completed = state._completed_response
    assert completed is not None, "no response.completed"
    return completed


def test_text_stream_is_the_exact_event_sequence():
    turn = turn_for({"model": "m", "input": "Hi", "stream": True})
    events = run_stream(turn, [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}), chunk({"content": "lo"}), chunk({}, "stop"),
        chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    ])
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    created, final = events[0]["response"], events[-1]["response"]
    assert created["id"] == final["id"] == turn.id and created["status"] == "in_progress"
    item_id = events[2]["item"]["id"]
    assert item_id.startswith("msg_")
    assert all(e.get("item_id", item_id) == item_id for e in events[3:9])
    assert events[6]["text"] == "Hello"
    assert final["status"] == "completed" and final["output"][0]["id"] == item_id
    assert final["usage"]["input_tokens"] == 3 and final["usage"]["output_tokens"] == 2
    completed = accumulate(events)
    assert completed.output_text == "Hello" and completed.id == turn.id
    assert turn.record is not None and turn.record.response == final


def test_text_then_parallel_tool_calls_get_their_own_items():
    turn = turn_for({"input": "x", "stream": True})
    events = run_stream(turn, [
        chunk({"role": "assistant", "content": "Checking"}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "time", "arguments": '{"tz":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"UTC"}'}}]}),
        chunk({}, "tool_calls"),
    ])
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["type"]) for e in added] == [
        (0, "message"), (1, "function_call"), (2, "function_call")]
    call_ids = {e["output_index"]: e["item"]["id"] for e in added[1:]}
    for event in events:
        if event["type"] == "response.function_call_arguments.delta":
            assert event["item_id"] == call_ids[event["output_index"]]
    done = {e["output_index"]: e for e in events
            if e["type"] == "response.function_call_arguments.done"}
    assert done[1]["arguments"] == '{"city":"Paris"}' and done[2]["arguments"] == '{"tz":"UTC"}'
    # The message closed before the first call started.
    types = [e["type"] for e in events]
    assert types.index("response.output_text.done") < types.index(
        "response.function_call_arguments.delta")
    final = accumulate(events)
    assert [(o.type, getattr(o, "call_id", None)) for o in final.output] == [
        ("message", None), ("function_call", "call_a"), ("function_call", "call_b")]
    assert turn.record is not None
    assert turn.record.output_items[2]["arguments"] == '{"tz":"UTC"}'


def test_reasoning_stream_and_hook_results_chunk():
    turn = turn_for({"input": "x", "stream": True})
    events = run_stream(turn, [
        chunk({"role": "assistant", "reasoning_content": "hmm"}),
        chunk({"content": "Answer"}), chunk({}, "stop"),
        {"hook_results": {"after_request_hooks": [{"verdict": True}]}},
    ])
    types = [e["type"] for e in events]
    assert types[2:7] == ["response.output_item.added", "response.content_part.added",
                          "response.reasoning_text.delta", "response.reasoning_text.done",
                          "response.content_part.done"]
    final = events[-1]["response"]
    assert [o["type"] for o in final["output"]] == ["reasoning", "message"]
    assert final["hook_results"] == {"after_request_hooks": [{"verdict": True}]}
    assert accumulate(events).output_text == "Answer"


def test_a_failed_stream_ends_with_response_failed_and_is_recorded_failed():
    turn = turn_for({"input": "x", "stream": True})
    events = run_stream(turn, [chunk({"content": "partial"})],
                        fail=UpstreamUnreachable("upstream went away"))
    assert [e["type"] for e in events][-2:] == ["response.output_item.done",
                                                "response.failed"]
    failed = events[-1]["response"]
    assert failed["id"] == turn.id and failed["status"] == "failed"
    assert failed["error"] == {"code": "upstream_unreachable", "message": "upstream went away"}
    assert "error" not in events[-1]  # the SDK would raise on a top-level error key
    assert turn.record is not None and turn.record.status == "failed"


def test_a_length_stop_ends_with_response_incomplete():
    turn = turn_for({"input": "x", "stream": True, "max_output_tokens": 2})
    events = run_stream(turn, [chunk({"content": "cut"}), chunk({}, "length")])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"


def test_an_empty_stream_still_opens_and_completes():
    turn = turn_for({"input": "x", "stream": True}, owner=None)
    events = run_stream(turn, [])
    assert [e["type"] for e in events] == ["response.created", "response.in_progress",
                                           "response.completed"]
    assert turn.record is None  # no owner known: nothing to store


# --- the native path (OpenAI, Azure) ----------------------------------------------------

def test_the_native_body_keeps_the_state_at_the_gateway():
    turn = ResponsesTurn()
    decoded = turn.decode(Endpoint.CHAT, orjson.dumps({
        "model": "gpt-x", "input": "Next?", "previous_response_id": "resp_prev",
        "background": True, "include": ["reasoning.encrypted_content"], "store": True}))
    assert decoded.native_only is None
    assert decoded.native == {"model": "gpt-x", "input": "Next?", "store": False,
                              "include": ["reasoning.encrypted_content"]}
    history = [
        {"type": "message", "id": "msg_u", "role": "user", "status": "completed",
         "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "reasoning", "id": "rs_plain", "summary": []},
        {"type": "reasoning", "id": "rs_sealed", "summary": [], "encrypted_content": "e"},
        {"type": "message", "id": "msg_a", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Hello", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
         "arguments": "{}", "status": "completed"},
        {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "42"},
    ]
    body, native = turn.continue_from("key:k", Chain(history, "resp_root", 3), None)
    assert native["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "reasoning", "id": "rs_sealed", "summary": [], "encrypted_content": "e"},
        {"role": "assistant", "content": "Hello"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        {"role": "user", "content": "Next?"}]
    assert "previous_response_id" not in native and native["store"] is False
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "user"]


def test_conversation_and_prompt_only_go_natively():
    turn = ResponsesTurn()
    decoded = turn.decode(Endpoint.CHAT, orjson.dumps({"model": "m", "conversation": "conv_1",
                                                       "input": "hi"}))
    assert decoded.native_only is not None and decoded.native_only[0] == "conversation"
    assert decoded.native is not None and "store" not in decoded.native  # OpenAI's state


def test_a_native_response_is_stored_under_the_turns_id():
    """Not the upstream's: it names nothing OpenAI keeps, and may come again (a cached answer
    for another key, an upstream repeating its ids)."""
    turn = turn_for({"model": "m", "input": "Hi", "previous_response_id": "resp_p"})
    turn.chain = Chain([], "resp_root", 0)
    turn.native_finished({"id": "resp_openai", "object": "response", "status": "completed",
                          "model": "gpt-x", "store": False, "previous_response_id": None,
                          "output": [{"type": "message", "id": "msg_o", "role": "assistant",
                                      "content": []}]})
    record = turn.record
    assert record is not None and record.id == turn.id and record.root_id == "resp_root"
    assert record.response["id"] == turn.id
    assert record.response["store"] is True
    assert record.response["previous_response_id"] == "resp_p"
    assert record.output_items[0]["id"] == "msg_o" and record.depth == 1


def test_an_error_before_any_event_is_a_plain_error_event():
    turn = turn_for({"input": "x", "stream": True})
    encoder = turn.stream_encoder(ANSWERED)
    raw = encoder.error(UpstreamUnreachable("gone"))
    event = orjson.loads(raw.decode().split("data: ", 1)[1])
    assert event == {"type": "error", "sequence_number": 0, "code": "upstream_unreachable",
                     "message": "gone", "param": None}
    assert turn.record is None


def test_native_watcher_and_replay():
    turn = turn_for({"input": "x"})
    response = encode(turn, completion({"role": "assistant", "content": "Hello"}))
    events = replay_response(response)
    assert accumulate(events).output_text == "Hello"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    watcher = RESPONSES_NATIVE.stream("responses")
    assert "".join(watcher.event(e) for e in events) == "Hello"
    watcher.end()
    assert watcher.result() == response
    assert watcher.usage == {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                             "prompt_tokens_details": {"cached_tokens": 4},
                             "completion_tokens_details": {"reasoning_tokens": 2}}
    assert RESPONSES_NATIVE.usage("responses", response) == watcher.usage
    cut = RESPONSES_NATIVE.stream("responses")
    cut.event(events[0])
    with pytest.raises(StreamError):
        cut.end()
    with pytest.raises(StreamError) as failed:
        cut.event({"type": "error", "code": "rate_limit_exceeded", "message": "slow down"})
    assert failed.value.error.status == 429


def test_a_cached_native_answer_replays_as_its_status_says_and_skips_odd_items():
    """A native answer from the cache, replayed as a stream: its items are the upstream's
    (untrusted), and a failed one must not end with response.completed."""
    response = {"id": "resp_c", "object": "response", "status": "failed", "output": [
        1, None, {"type": "message", "id": "msg_c", "role": "assistant", "content": "odd"},
        {"type": "function_call", "id": "fc_c", "name": "f", "arguments": {"a": 1}}]}
    events = replay_response(response)
    assert events[-1]["type"] == "response.failed" and events[-1]["response"] == response
    assert [(e["output_index"], e["item"]["id"]) for e in events
            if e["type"] == "response.output_item.added"] == [(0, "msg_c"), (1, "fc_c")]
    assert [e["delta"] for e in events if e["type"].endswith(".delta")] == []

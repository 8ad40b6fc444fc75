"""Replaying a completion as chunks, and assembling chunks into a completion, agree."""

from __future__ import annotations

import copy

from gateway.cache.replay import StreamAssembler, completion_to_chunks

USAGE = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
TOOL_CALL = {"id": "call_1", "type": "function",
             "function": {"name": "lookup", "arguments": '{"q": "x"}'}}


def chat_completion() -> dict:
    return {"id": "c1", "object": "chat.completion", "created": 5, "model": "m",
            "choices": [
                {"index": 0, "logprobs": None, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello there"}},
                {"index": 1, "logprobs": None, "finish_reason": "tool_calls",
                 "message": {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]}}],
            "usage": USAGE}


def assemble(chunks: list[dict]) -> dict | None:
    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.feed(chunk)
    return assembler.result()


def test_chat_completion_round_trips_through_chunks():
    body = chat_completion()
    chunks = completion_to_chunks(copy.deepcopy(body), include_usage=True)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[-1] == {"id": "c1", "object": "chat.completion.chunk", "created": 5,
                          "model": "m", "choices": [], "usage": USAGE}
    assert assemble(chunks) == body


def test_usage_chunk_only_when_asked():
    chunks = completion_to_chunks(chat_completion(), include_usage=False)
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


def test_text_completion_round_trips():
    body = {"id": "t1", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "text": "abc", "logprobs": None, "finish_reason": "length"}]}
    chunks = completion_to_chunks(body, include_usage=False)
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert assemble(chunks) == body


def test_tool_call_fragments_are_joined():
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    pieces = [
        {"role": "assistant", "content": None,
         "tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                         "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]},
    ]
    chunks = [head | {"choices": [{"index": 0, "delta": d, "finish_reason": None}]}
              for d in pieces]
    chunks.append(head | {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    message = assemble(chunks)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]}


def test_stream_of_unknown_objects_is_not_assembled():
    assert assemble([{"object": "something.else", "choices": []}]) is None
    assert assemble([]) is None

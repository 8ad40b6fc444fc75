"""What text a check reads, per dialect (Portkey's getText rule, plus Responses)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.guardrails import content
from tests.gateway.guardrails.build import after, before


def read_request(body: Any, request_type: str) -> str:
    return content.read(content.REQUEST_CONTENT, request_type, body).text


def read_answer(body: Any, request_type: str) -> str:
    return content.read(content.ANSWER_CONTENT, request_type, body).text


def test_chat_and_messages_read_the_last_message_only() -> None:
    body = {"system": "ignored", "messages": [
        {"role": "system", "content": "not read"}, {"role": "user", "content": "earlier"},
        {"role": "user", "content": [{"type": "text", "text": "one"},
                                     {"type": "image_url", "image_url": {"url": "u"}},
                                     {"type": "text", "text": "two"}]}]}
    assert read_request(body, "chatComplete") == "one\ntwo"
    assert read_request(body, "messages") == "one\ntwo"


def test_completions_embeddings_and_responses_requests() -> None:
    assert read_request({"prompt": "tell me"}, "complete") == "tell me"
    assert read_request({"prompt": ["a", "b"]}, "complete") == "a\nb"
    assert read_request({"input": ["x", "y"]}, "embed") == "x\ny"
    assert read_request({"input": "just text"}, "responses") == "just text"
    items = {"input": [{"role": "user", "content": "old"},
                       {"role": "user", "content": [{"type": "input_text", "text": "new"}]}]}
    assert read_request(items, "responses") == "new"


def test_answers_per_dialect() -> None:
    chat = {"choices": [{"message": {"content": "first"}}, {"message": {"content": "second"}}]}
    assert read_answer(chat, "chatComplete") == "first"
    assert read_answer({"choices": [{"text": "done"}]}, "complete") == "done"
    anthropic = {"content": [{"type": "text", "text": "a"},
                             {"type": "tool_use", "id": "t", "name": "f", "input": {}},
                             {"type": "text", "text": "b"}]}
    assert read_answer(anthropic, "messages") == "a\nb"
    responses = {"output": [
        {"type": "reasoning", "summary": []},
        {"type": "message", "content": [{"type": "output_text", "text": "r1"}]},
        {"type": "message", "content": [{"type": "output_text", "text": "r2"}]}]}
    assert read_answer(responses, "responses") == "r1\nr2"


@pytest.mark.parametrize("body", [{}, {"messages": []}, {"messages": "x"},
                                  {"messages": [None]}, {"messages": [{"role": "user"}]}])
def test_malformed_requests_read_as_no_text(body: dict[str, Any]) -> None:
    assert read_request(body, "chatComplete") == ""


@pytest.mark.parametrize("body", [{}, {"choices": []}, {"choices": [{"message": None}]},
                                  {"choices": ["x"]}])
def test_malformed_answers_read_as_no_text(body: dict[str, Any]) -> None:
    assert read_answer(body, "chatComplete") == ""


def test_writing_texts_copies_the_body() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "secret"}]}
    subject = before(body)
    new = subject.with_texts(("[x]",))
    assert new == {"model": "m", "messages": [{"role": "user", "content": "[x]"}]}
    assert body["messages"][0]["content"] == "secret"
    responses = {"output": [{"type": "message", "content": [
        {"type": "output_text", "text": "a", "annotations": []}]}]}
    rewritten = after(responses, "responses").with_texts(("b",))
    assert rewritten is not None
    assert rewritten["output"][0]["content"][0] == {"type": "output_text", "text": "b",
                                                    "annotations": []}
    assert responses["output"][0]["content"][0]["text"] == "a"


def test_embeddings_cannot_be_written() -> None:
    assert before({"input": "x"}, "embed").with_texts(("y",)) is None

"""Builders for guardrail tests: checks and hooks parsed from config JSON, events, subjects."""

from __future__ import annotations

from typing import Any

from gateway.guardrails.config import parse_node
from gateway.guardrails.event import HookEvent, Subject
from gateway.guardrails.hooks import AFTER, BEFORE, Check, Hook
from gateway.guardrails.results import CheckOutcome


def hooks(key: str, raw: list[dict[str, Any]]) -> tuple[Hook, ...]:
    """The hooks of one config list, which must be valid."""
    node, problems = parse_node({key: raw})
    assert problems == [], problems
    found = node.before if key in ("before_request_hooks", "input_guardrails",
                                   "input_mutators") else node.after
    assert found is not None
    return found


def problems_of(key: str, raw: Any) -> list[str]:
    return parse_node({key: raw})[1]


def check(check_id: str, **params: Any) -> Check:
    hook = hooks("after_request_hooks", [
        {"type": "guardrail", "checks": [{"id": check_id, "parameters": params}]}])[0]
    return hook.checks[0]


def hook(*checks: tuple[str, dict[str, Any]], **fields: Any) -> Hook:
    """A full-form hook (`type` defaults to guardrail) of (check id, parameters) pairs."""
    raw = {"type": "guardrail", **fields,
           "checks": [{"id": i, "parameters": p} for i, p in checks]}
    return hooks("after_request_hooks", [raw])[0]


def chat_request(text: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def chat_answer(text: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


def answer_event(text: Any, request_type: str = "chatComplete", **fields: Any) -> HookEvent:
    answer = chat_answer(text) if request_type == "chatComplete" else text
    return HookEvent(request_type, fields.pop("request", chat_request("hi")), response=answer,
                     status=fields.pop("status", 200), **fields)


def request_event(body: dict[str, Any], request_type: str = "chatComplete",
                  **fields: Any) -> HookEvent:
    return HookEvent(request_type, body, **fields)


def after(text: Any, request_type: str = "chatComplete", **fields: Any) -> Subject:
    """The subject after-request checks read: the answer (a chat answer around `text`)."""
    return Subject.of(AFTER, answer_event(text, request_type, **fields))


def before(body: dict[str, Any], request_type: str = "chatComplete",
           **fields: Any) -> Subject:
    return Subject.of(BEFORE, request_event(body, request_type, **fields))


def run(check_id: str, text: Any, **params: Any) -> CheckOutcome:
    """A synchronous check on a chat answer whose content is `text`."""
    built = check(check_id, **params)
    return built.spec.run(built, after(text))  # type: ignore[no-any-return]


def run_on(built: Check, subject: Subject) -> CheckOutcome:
    return built.spec.run(built, subject)  # type: ignore[no-any-return]

"""The runner's plain path (synchronous guardrail hooks of in-process checks, one loop) gives
what its general path gives: the same hooks run both ways, compared but for their clocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.guardrails import HookEvent
from gateway.guardrails.hooks import Check, Hook
from gateway.guardrails.results import PhaseResult
from gateway.guardrails.runner import GuardrailRunner
from gateway.guardrails.spec import CheckSpec
from gateway.net.hostguard import HostGuard
from tests.gateway.guardrails.build import answer_event, chat_request, hook, hooks

WORDS = ("default.contains", {"words": ["forbidden", "secret", "fine"], "operator": "none"})
SSN = ("default.regexMatch", {"rule": r"\b\d{3}-\d{2}-\d{4}\b", "not": True})
COUNT = ("default.wordCount", {"minWords": 1, "maxWords": 8})
REDACT = ("default.regexReplace", {"rule": r"\d{4}"})  # transforms, in a guardrail hook


def _boom(check: Check, subject: Any) -> Any:
    raise RuntimeError("bug")


BROKEN = Check("default.broken", {}, CheckSpec(_boom))

CASES: dict[str, tuple[list[Hook], HookEvent]] = {
    "one hook passes": ([hook(WORDS, SSN, COUNT, deny=True)], HookEvent(
        "chatComplete", chat_request("the quick brown fox"))),
    "one hook fails": ([hook(WORDS, SSN, COUNT, deny=True)], HookEvent(
        "chatComplete", chat_request("a secret: 123-45-6789 and many more words here"))),
    "three hooks, feedback": ([
        hook(WORDS, deny=True, on_fail={"feedback": {"value": -1, "weight": 1}}),
        hook(SSN, on_success={"feedback": {"value": 1, "metadata": {"team": "x"}}}),
        hook(COUNT)], HookEvent("chatComplete", chat_request("fine 123-45-6789"))),
    "checks transform, the last one wins": ([
        hook(REDACT, WORDS), hook(COUNT), hook(REDACT, ("default.addPrefix", {
            "prefix": "Note: "}))], HookEvent("chatComplete", chat_request("pin 1234 ok"))),
    "disabled and crashing checks": ([
        hook(("default.contains", {"words": ["x"], "operator": "any", "is_enabled": False}),
             COUNT),
        Hook("broken", "guardrail", (BROKEN,), deny=True)],
        HookEvent("chatComplete", chat_request("x marks"))),
    "no text": ([hook(WORDS, SSN, COUNT)], HookEvent("chatComplete", chat_request(None))),
    "embeddings": (list(hooks("input_guardrails", [{"contains": WORDS[1]}])),
                   HookEvent("embed", {"model": "e", "input": ["a secret", "b"]})),
}
AFTER_CASES: dict[str, tuple[list[Hook], HookEvent]] = {
    "answer checked": ([hook(WORDS, COUNT)], answer_event("a fine answer")),
    "skipped on an error status": ([hook(WORDS)], answer_event("x", status=500)),
    "skipped after embeddings": ([hook(WORDS)], answer_event(
        {"data": []}, "embed", request={"model": "e", "input": "a"})),
}


@pytest.fixture
async def runners() -> AsyncIterator[tuple[GuardrailRunner, GuardrailRunner]]:
    async with httpx.AsyncClient() as http:  # never used: these hooks do not call out
        plain = GuardrailRunner(http, HostGuard([]))
        # Every text is over its offload threshold: its checks take the general path.
        general = GuardrailRunner(http, HostGuard([]), offload_chars=-1)
        yield plain, general
        await plain.aclose()
        await general.aclose()


def _without_clocks(result: PhaseResult) -> tuple[Any, ...]:
    hooks_ = [{k: v for k, v in h.to_json().items() if k not in ("execution_time", "created_at")}
              for h in result.hooks]
    for entry in hooks_:
        entry["checks"] = [{k: v for k, v in c.items() if k not in ("execution_time",
                                                                       "created_at")}
                           for c in entry.get("checks", [])]
    return hooks_, result.body, result.deny, result.failed


def test_the_cases_take_the_plain_path() -> None:
    for hooks_, _ in (*CASES.values(), *AFTER_CASES.values()):
        assert all(h.plain for h in hooks_)
    assert not hook(WORDS, sequential=True).plain
    assert not hooks("input_guardrails", [{"contains": WORDS[1], "async": True}])[0].plain
    assert not hooks("input_mutators", [{"regexReplace": REDACT[1]}])[0].plain
    assert not hook(("default.webhook", {"webhookURL": "http://127.0.0.1:9/x"})).plain


@pytest.mark.parametrize("name", CASES)
async def test_before_the_request_both_paths_agree(
        runners: tuple[GuardrailRunner, GuardrailRunner], name: str) -> None:
    plain, general = runners
    hooks_, event = CASES[name]
    fast = await plain.before_request(hooks_, event)
    slow = await general.before_request(hooks_, event)
    assert _without_clocks(fast) == _without_clocks(slow)


@pytest.mark.parametrize("name", AFTER_CASES)
async def test_after_the_answer_both_paths_agree(
        runners: tuple[GuardrailRunner, GuardrailRunner], name: str) -> None:
    plain, general = runners
    hooks_, event = AFTER_CASES[name]
    assert _without_clocks(await plain.after_request(hooks_, event)) \
        == _without_clocks(await general.after_request(hooks_, event))


async def test_the_plain_path_times_each_check_and_hook(
        runners: tuple[GuardrailRunner, GuardrailRunner]) -> None:
    result = await runners[0].before_request([hook(WORDS, SSN, COUNT)], CASES["one hook passes"][1])
    (only,) = result.hooks
    checks = only.checks
    assert all(c.execution_time >= 0 for c in checks)
    assert only.execution_time >= max(c.execution_time for c in checks)
    # Each check starts when the one before it ended, within the hook's own span (to the
    # millisecond, as Portkey writes a check's start).
    starts = [_epoch_ms(c.created_at) for c in checks]
    hook_start = _epoch_ms(only.created_at)
    assert starts == sorted(starts) and hook_start <= starts[0]
    assert starts[-1] - hook_start <= only.execution_time + 1


def _epoch_ms(text: str) -> int:
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)

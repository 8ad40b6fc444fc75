"""The runner: deny and flag, fail-open errors, mutators first, sequential hooks, skips,
async hooks off the critical path, and big inputs checked off the event loop."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.guardrails import HookEvent, HooksFailed, answer_status, with_hook_results
from gateway.guardrails.hooks import AFTER, Check, Hook
from gateway.guardrails.results import NOTHING_RAN, HookResult, hook_results
from gateway.guardrails.runner import OFFLOAD_TEXT_CHARS, GuardrailRunner
from gateway.guardrails.spec import CheckSpec
from gateway.net.hostguard import HostGuard
from tests.gateway.guardrails.build import answer_event, chat_request, hook, hooks

CONTAINS_NONE = ("default.contains", {"words": ["forbidden"], "operator": "none"})


@pytest.fixture
async def runner() -> AsyncIterator[GuardrailRunner]:
    async with httpx.AsyncClient() as http:  # never used: these hooks do not call out
        made = GuardrailRunner(http, HostGuard([]))
        yield made
        await made.aclose()


def chat(text: str) -> HookEvent:
    return HookEvent("chatComplete", chat_request(text), provider="openai")


async def test_no_hooks_is_nothing(runner: GuardrailRunner) -> None:
    result = await runner.before_request((), chat("hi"))
    assert result is NOTHING_RAN and not result.ran and not result.deny
    assert with_hook_results({"id": "x"}, result) == {"id": "x"}


async def test_a_denying_hook_that_fails_denies(runner: GuardrailRunner) -> None:
    result = await runner.before_request([hook(CONTAINS_NONE, id="no-bad", deny=True)],
                                         chat("a forbidden word"))
    assert result.deny and result.failed and result.body is None
    only = result.hooks[0]
    assert (only.id, only.verdict, only.deny) == ("no-bad", False, True)
    error = HooksFailed(result)
    assert error.status == 446
    envelope = error.envelope()
    assert envelope["error"] == {
        "message": "The guardrail checks defined in the config failed. You can find more "
                   "information in the `hook_results` object.",
        "type": "hooks_failed", "param": None, "code": None}
    shown = envelope["hook_results"]
    assert shown["after_request_hooks"] == []
    entry = shown["before_request_hooks"][0]
    assert {k: entry[k] for k in ("id", "verdict", "deny", "async", "type", "transformed")} \
        == {"id": "no-bad", "verdict": False, "deny": True, "async": False,
            "type": "guardrail", "transformed": False}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["created_at"])
    check = entry["checks"][0]
    assert set(check) == {"id", "verdict", "data", "error", "execution_time", "created_at",
                          "transformed", "log", "fail_on_error"}
    assert check["data"]["foundWords"] == ["forbidden"] and check["error"] is None


async def test_a_failing_hook_without_deny_flags(runner: GuardrailRunner) -> None:
    result = await runner.before_request([hook(CONTAINS_NONE)], chat("forbidden"))
    assert not result.deny and result.failed
    assert answer_status(200, result) == 246
    assert answer_status(500, result) == 500
    passing = await runner.before_request([hook(CONTAINS_NONE)], chat("fine"))
    assert not passing.failed and answer_status(200, passing) == 200
    body = with_hook_results({"id": "chatcmpl-1"}, passing)
    assert body["hook_results"]["before_request_hooks"][0]["verdict"] is True


async def test_after_phase_flags_and_denies(runner: GuardrailRunner) -> None:
    before = await runner.before_request([hook(CONTAINS_NONE)], chat("fine"))
    flagged = await runner.after_request([hook(("default.wordCount", {"maxWords": 2}))],
                                         answer_event("three words here"))
    assert answer_status(200, before, flagged) == 246 and not flagged.deny
    denied = await runner.after_request(
        [hook(("default.wordCount", {"maxWords": 2}), deny=True)], answer_event("a b c"))
    assert denied.deny
    shown = HooksFailed(before, denied).envelope()["hook_results"]
    assert len(shown["before_request_hooks"]) == 1 and len(shown["after_request_hooks"]) == 1


async def test_errors_are_fail_open_unless_fail_on_error(runner: GuardrailRunner) -> None:
    lenient = hook(("default.wordCount", {"maxWords": 5}), deny=True)
    strict = hook(("default.wordCount", {"maxWords": 5, "failOnError": True}), deny=True)
    blank = answer_event("   ")
    open_ = await runner.after_request([lenient], blank)
    assert not open_.deny and not open_.failed
    assert open_.hooks[0].checks[0].error is not None
    closed = await runner.after_request([strict], blank)
    assert closed.deny and closed.hooks[0].checks[0].fail_on_error is True


async def test_a_crashing_check_is_an_error(runner: GuardrailRunner) -> None:
    def boom(check: Check, subject: Any) -> Any:
        raise RuntimeError("bug")

    broken = Check("default.broken", {"failOnError": False}, CheckSpec(boom))
    result = await runner.before_request([Hook("h", "guardrail", (broken,), deny=True)],
                                         chat("x"))
    check = result.hooks[0].checks[0]
    assert check.verdict is False and not result.deny
    assert check.error is not None and check.to_json()["error"] == {
        "name": "Check error", "message": "Error executing check"}


async def test_mutators_run_first_and_guardrails_check_what_is_sent(
        runner: GuardrailRunner) -> None:
    event = chat("my secret is 1234")
    guard = hooks("input_guardrails", [{"contains": {"words": ["1234"], "operator": "none"},
                                        "deny": True}])
    redact = hooks("input_mutators", [{"regexReplace": {"rule": r"\d{4}"}}])
    result = await runner.before_request([*guard, *redact], event)
    assert not result.deny and result.body is not None
    assert result.body["messages"][-1]["content"] == "my secret is [REDACTED]"
    assert event.request["messages"][-1]["content"] == "my secret is 1234"
    assert [h.type for h in result.hooks] == ["guardrail", "mutator"]  # config order kept
    assert result.hooks[1].transformed is True


async def test_sequential_checks_see_earlier_transformations(runner: GuardrailRunner) -> None:
    redact = ("default.regexReplace", {"rule": "forbidden"})
    in_order = hook(redact, CONTAINS_NONE, sequential=True, deny=True)
    at_once = hook(redact, CONTAINS_NONE, deny=True)
    assert not (await runner.before_request([in_order], chat("forbidden"))).deny
    assert (await runner.before_request([at_once], chat("forbidden"))).deny


async def test_disabled_checks_do_not_run(runner: GuardrailRunner) -> None:
    raw = [{"contains": {"words": ["forbidden"], "operator": "none", "is_enabled": False},
            "deny": True}]
    result = await runner.before_request(hooks("input_guardrails", raw), chat("forbidden"))
    assert not result.deny and result.hooks[0].checks == ()
    mutator = hooks("input_mutators", [{"regexReplace": {"rule": "x", "is_enabled": False}}])
    assert (await runner.before_request(mutator, chat("x"))).body is None


@pytest.mark.parametrize(("request_type", "phase", "status", "raw_key"), [
    ("imageGenerate", "before", None, "input_guardrails"),
    ("embed", "after", 200, "output_guardrails"),
    ("embed", "before", None, "input_mutators"),
    ("chatComplete", "after", 500, "output_guardrails"),
])
async def test_skipped_hooks(runner: GuardrailRunner, request_type: str, phase: str,
                             status: int | None, raw_key: str) -> None:
    listed = hooks(raw_key, [{"id": "h", "notNull": {}, "deny": True}])
    event = HookEvent(request_type, {"model": "m", "input": "x"}, response={}, status=status)
    run = runner.before_request if phase == "before" else runner.after_request
    result = await run(listed, event)
    assert not result.deny and not result.failed
    assert result.to_json() == [{"id": "h", "type": listed[0].type, "skipped": True}]


async def test_async_mutators_are_skipped(runner: GuardrailRunner) -> None:
    listed = hooks("input_mutators", [{"regexReplace": {"rule": "x"}, "async": True}])
    result = await runner.before_request(listed, chat("x"))
    assert result.body is None and result.hooks[0].skipped


async def test_async_guardrails_run_off_the_critical_path() -> None:
    reported: list[tuple[str, HookResult]] = []
    done = asyncio.Event()

    def on_async(phase: str, result: HookResult) -> None:
        reported.append((phase, result))
        done.set()

    async with httpx.AsyncClient() as http:
        runner = GuardrailRunner(http, HostGuard([]), on_async=on_async)
        listed = hooks("input_guardrails", [
            {"id": "later", "contains": {"words": ["forbidden"], "operator": "none"},
             "deny": True, "async": True}])
        result = await runner.before_request(listed, chat("forbidden"))
        assert result.hooks == () and not result.deny and not result.failed
        await asyncio.wait_for(done.wait(), 10)
        await runner.aclose()
    phase, late = reported[0]
    assert phase == "beforeRequestHook" and late.id == "later"
    assert late.verdict is False and late.deny is True and late.is_async is True


async def test_feedback(runner: GuardrailRunner) -> None:
    listed = hooks("output_guardrails", [{
        "wordCount": {"maxWords": 2}, "notNull": {}, "endsWith": {"suffix": "z"},
        "on_fail": {"feedback": {"value": -10, "weight": 1, "metadata": {"team": "a"}}},
        "on_success": {"feedback": {"value": 1, "weight": 1}}}])
    result = await runner.after_request(listed, answer_event("three words here"))
    assert result.hooks[0].feedback == {"value": -10, "weight": 1, "metadata": {
        "team": "a", "successfulChecks": "default.notNull",
        "failedChecks": "default.wordCount, default.endsWith", "erroredChecks": ""}}
    fine = await runner.after_request(listed, answer_event("z"))
    assert fine.hooks[0].feedback is not None and fine.hooks[0].feedback["value"] == 1


async def test_hook_results_shape(runner: GuardrailRunner) -> None:
    result = await runner.after_request([hook(CONTAINS_NONE, id="out")], answer_event("ok"))
    shown = hook_results(NOTHING_RAN, result)
    assert shown["before_request_hooks"] == []
    assert set(shown["after_request_hooks"][0]) == {
        "verdict", "id", "type", "deny", "async", "transformed", "execution_time",
        "created_at", "feedback", "checks"}


async def test_big_inputs_are_checked_off_the_event_loop(runner: GuardrailRunner) -> None:
    """A regex whose DFA thrashes costs ~125 ns a byte on RE2: linear, yet on megabytes the
    check must not hold the loop. Other coroutines keep running while it matches."""
    rng = random.Random(7)
    # A "c" the pattern needs (so no prefilter answers for RE2), where no match can end.
    text = "c" + "".join(rng.choices("ab", k=1_000_000))
    assert len(text) > OFFLOAD_TEXT_CHARS
    hostile = hook(("default.regexMatch", {"rule": "a[ab]{20}c"}), deny=True)
    ticks = 0
    task = asyncio.ensure_future(runner.after_request([hostile], answer_event(text)))
    while not task.done():
        ticks += 1
        await asyncio.sleep(0)
    result = task.result()
    assert result.deny and result.hooks[0].checks[0].data["matchDetails"] is None
    assert ticks > 100  # run inline, the phase would finish within a handful of ticks


async def test_backtracking_patterns_stay_linear(runner: GuardrailRunner) -> None:
    evil = hook(("default.regexMatch", {"rule": "^(a+)+$"}))
    result = await runner.after_request([evil], answer_event("a" * 200_000 + "!"))
    assert result.failed  # no match; Python's re would backtrack for longer than the universe


async def test_after_hooks_read_the_answer_of_each_dialect(runner: GuardrailRunner) -> None:
    event = HookEvent("messages", {"model": "claude", "messages": []}, status=200,
                      response={"content": [{"type": "text", "text": "forbidden"}]})
    result = await runner.after_request([hook(CONTAINS_NONE, deny=True)], event)
    assert result.deny
    assert AFTER == "afterRequestHook"

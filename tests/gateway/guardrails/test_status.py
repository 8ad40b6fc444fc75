"""`hook_results` spliced into an answer's bytes: the object `with_hook_results` gives, without
decoding the answer; and None (decode instead) wherever that could differ."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest

from gateway.guardrails.results import (
    NOTHING_RAN,
    CheckError,
    CheckResult,
    HookResult,
    PhaseResult,
    hook_results,
    iso,
    rendered_hook_results,
)
from gateway.guardrails.status import answer_status, spliced_hook_results, with_hook_results

NOW = 1_733_400_000.25
BEFORE = PhaseResult((HookResult(
    "input_guardrail_1", "guardrail", verdict=True, checks=(CheckResult(
        "default.contains", True, {"explanation": "No words were found. é \"q\""}, None,
        0.01, iso(NOW)),), execution_time=0.02, created_at=iso(NOW)),))
AFTER = PhaseResult((HookResult("out", "guardrail", skipped=True),))


def _expected(content: bytes, before: PhaseResult, after: PhaseResult | None) -> Any:
    return with_hook_results(orjson.loads(content), before, after)


@pytest.mark.parametrize("content", [
    b'{"id":"chatcmpl-1","choices":[{"message":{"content":"hi {}"}}],"usage":null}',
    b"{}",
    b" {  } \n",
    b'{\n  "id": "x",\n  "nested": {"a": [1, 2.5e-3, true, null]}\n}\n',
    b'{"text":"ends with a brace }"}',
    b'{"a":1 }',  # space before the closing brace: the member before it is found past it
    b'{"a":[]\t}\n',
    '{"text":"ünïcödé, 日本"}'.encode(),
])
@pytest.mark.parametrize("after", [None, AFTER])
def test_the_spliced_answer_is_the_decoded_one(content: bytes,
                                               after: PhaseResult | None) -> None:
    spliced = spliced_hook_results(content, BEFORE, after)
    assert spliced is not None
    assert orjson.loads(spliced) == _expected(content, BEFORE, after)
    assert list(orjson.loads(spliced))[-1] == "hook_results"  # added last, as a dict merge


@pytest.mark.parametrize("after", [None, AFTER, NOTHING_RAN])
def test_a_phase_is_rendered_once_and_spliced_as_hook_results(
        after: PhaseResult | None) -> None:
    errored = CheckResult("default.webhook", False, None, CheckError("timed out", "TimeoutError"),
                          1.5, iso(NOW), fail_on_error=True)
    phase = PhaseResult((*BEFORE.hooks, HookResult(
        "checked", "guardrail", verdict=False, checks=(errored,), created_at=iso(NOW)),
        HookResult("off", "guardrail", skipped=True)))
    first = phase.rendered()  # the checks written by orjson itself: the same JSON
    assert orjson.loads(first) == phase.to_json()
    assert phase.rendered() is first  # kept: made ahead of the answer, used by it
    assert orjson.loads(rendered_hook_results(phase, after)) == hook_results(phase, after)


def test_the_answer_keeps_its_own_bytes() -> None:
    content = b'{"a": 1.50, "b": "\\/"}'
    spliced = spliced_hook_results(content, BEFORE)
    assert spliced is not None and spliced.startswith(b'{"a": 1.50, "b": "\\/","hook_results":')


def test_nothing_ran_leaves_the_answer_as_it_is() -> None:
    content = b'{"id": "x"}'
    assert spliced_hook_results(content, NOTHING_RAN) is content
    assert spliced_hook_results(content, NOTHING_RAN, PhaseResult()) is content


@pytest.mark.parametrize("content", [
    b'{"id":"x","hook_results":{"before_request_hooks":[]}}',  # a gateway behind a gateway
    b'{"id":"x","hook\\u005fresults":1}',  # the key spelled with an escape
    b'{"text":"\\u00e9"}',  # any escape: not told apart from the one above
    b'[{"id":"x"}]',
    b'"text"',
    b"",
])
def test_where_splicing_could_differ_the_caller_decodes(content: bytes) -> None:
    assert spliced_hook_results(content, BEFORE) is None


def test_a_key_already_there_is_replaced_once_decoded() -> None:
    content = b'{"id":"x","hook_results":{"stale":true}}'
    body = with_hook_results(orjson.loads(content), BEFORE)
    assert list(body) == ["id", "hook_results"] and "stale" not in body["hook_results"]


@pytest.mark.parametrize(("hooks", "deny", "failed"), [
    ((), False, False),
    ((HookResult("a", "guardrail"),), False, False),
    ((HookResult("a", "guardrail", verdict=False),), False, True),
    ((HookResult("a", "guardrail", verdict=False, deny=True),), True, True),
    # A skipped hook never denies nor fails the phase, whatever its fields say.
    ((HookResult("s", "guardrail", verdict=False, deny=True, skipped=True),), False, False),
    ((HookResult("s", "guardrail", skipped=True), HookResult("a", "guardrail", verdict=False)),
     False, True),
    ((HookResult("a", "guardrail", verdict=False), HookResult("b", "guardrail", verdict=False,
                                                              deny=True)), True, True),
])
def test_a_phase_denies_and_fails_by_the_hooks_that_ran(
        hooks: tuple[HookResult, ...], deny: bool, failed: bool) -> None:
    phase = PhaseResult(hooks)
    assert (phase.deny, phase.failed, phase.ran) == (deny, failed, bool(hooks))
    assert answer_status(200, phase) == (246 if failed else 200)


def test_iso_writes_javascripts_form_from_a_fresh_process() -> None:
    # A fresh process: its caches hold nothing yet, which no time may be mistaken for.
    script = ("from gateway.guardrails.results import iso; "
              "print(iso(-0.5), iso(-0.001), iso(0), iso(1733540000.1239), iso(1733540000.9999))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1969-12-31T23:59:59.500Z", "1969-12-31T23:59:59.999Z",
                   "1970-01-01T00:00:00.000Z", "2024-12-07T02:53:20.123Z",
                   "2024-12-07T02:53:20.999Z"]

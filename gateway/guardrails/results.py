"""Verdicts: what a check returns, and Portkey's `hook_results` built from them.

A check returns a `CheckOutcome` (verdict, data, error, and a transformed body for mutators
and webhooks). The runner stamps it into a `CheckResult` (id, timing, `fail_on_error`); a
hook's checks make a `HookResult`, and a phase's hooks a `PhaseResult`. All are made and read
for every check of every request, so they are plain dataclasses, immutable by convention:
a frozen one sets each field through `object.__setattr__`, and Python 3.11 reads a
NamedTuple's field through a descriptor it does not specialise (instructions under callgrind:
building one of eight fields, NamedTuple 3,500 against 2,500; reading a field, 205 against
60). A `CheckResult` (and `CheckError`) keeps its `__dict__`: orjson writes it from there,
where it finds a slots dataclass's fields by raising and catching an AttributeError (three
results: 12,000 instructions against 31,700). Portkey's rules:

- a check passes when its verdict is true, or when it errored and `failOnError` is not set
  (errors are fail-open by default);
- a hook's verdict is true when every check passes; its `deny` is `hook.deny and not verdict`;
- a phase denies when some hook that ran (not skipped) denies, and has failed when some hook
  that ran has a false verdict.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.guardrails.hooks import Feedback, Hook, HookType


@dataclass(frozen=True)
class CheckError:
    message: str
    name: str = "Error"

    def to_json(self) -> dict[str, str]:
        return {"message": self.message, "name": self.name}  # as orjson writes the object


@dataclass(slots=True)
class CheckOutcome:
    """What a check function returns."""

    verdict: bool
    data: Any = None
    error: CheckError | None = None
    json: Mapping[str, Any] | None = None  # the transformed request or answer body
    transformed: bool = False


@dataclass
class CheckResult:
    """A check's result. Its fields are Portkey's, named and ordered as it writes them, so
    that orjson writes one as it is, in C (`PhaseResult.rendered`); `to_json` is the dict."""

    id: str
    verdict: bool
    data: Any
    error: CheckError | None
    execution_time: float  # milliseconds
    created_at: str  # when it started, as Portkey writes it (iso())
    transformed: bool = False
    log: None = None  # Portkey's field; no check here keeps a log of its own
    fail_on_error: bool = False

    @property
    def passes(self) -> bool:
        return self.verdict or (self.error is not None and not self.fail_on_error)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "verdict": self.verdict, "data": self.data,
                "error": None if self.error is None else self.error.to_json(),
                "execution_time": self.execution_time, "created_at": self.created_at,
                "transformed": self.transformed, "log": self.log,
                "fail_on_error": self.fail_on_error}


@dataclass(slots=True)
class HookResult:
    id: str
    type: HookType
    verdict: bool = True
    deny: bool = False
    is_async: bool = False
    transformed: bool = False
    checks: tuple[CheckResult, ...] = ()
    feedback: Mapping[str, Any] | None = None
    execution_time: float = 0.0
    created_at: str = ""  # when it started, as Portkey writes it (iso())
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return self._json([c.to_json() for c in self.checks])

    def _json(self, checks: Any) -> dict[str, Any]:
        """The hook's object with `checks` as given: dicts, or the results themselves for
        orjson to write (`PhaseResult.rendered`)."""
        if self.skipped:
            return {"id": self.id, "type": self.type, "skipped": True}
        return {"verdict": self.verdict, "id": self.id, "type": self.type, "deny": self.deny,
                "async": self.is_async, "transformed": self.transformed,
                "execution_time": self.execution_time, "created_at": self.created_at,
                "feedback": self.feedback, "checks": checks}


def skipped(hook: Hook) -> HookResult:
    return HookResult(hook.id, hook.type, skipped=True)


def hook_result(hook: Hook, checks: Sequence[CheckResult], started: float,
                created_at: float, finished: float | None = None) -> HookResult:
    """`started`, `finished`: `time.perf_counter()` readings (`finished` None: now);
    `created_at`: the wall clock (`time.time()`) at `started`."""
    verdict, transformed = True, False
    for check in checks:  # a loop, not all() and any() over generators: this runs per hook
        verdict = verdict and check.passes
        transformed = transformed or check.transformed
    ended = time.perf_counter() if finished is None else finished
    told = None if hook.on_success is None and hook.on_fail is None else \
        feedback(hook, checks)
    return HookResult(hook.id, hook.type, verdict, hook.deny and not verdict, hook.is_async,
                      transformed, tuple(checks), told, milliseconds(ended - started),
                      iso(created_at))


def feedback(hook: Hook, checks: Sequence[CheckResult]) -> dict[str, Any] | None:
    """Portkey's feedback object: its verdict counts any error as passing (no failOnError)."""
    if hook.on_success is None and hook.on_fail is None:
        return None
    passed = all(c.verdict or c.error is not None for c in checks)
    chosen: Feedback | None = hook.on_success if passed else hook.on_fail
    if chosen is None:
        return None
    return {"value": chosen.value, "weight": chosen.weight, "metadata": {
        **chosen.metadata,
        "successfulChecks": ", ".join(c.id for c in checks if c.verdict),
        "failedChecks": ", ".join(c.id for c in checks if not c.verdict and c.error is None),
        "erroredChecks": ", ".join(c.id for c in checks if not c.verdict and c.error),
    }}


@dataclass(slots=True)
class PhaseResult:
    """One phase's hooks that ran (async ones report later), and the body they left.

    Immutable by convention. `ran`, `deny` and `failed` are read several times a request (the
    pipeline, the status, the usage row, the metrics), so they are worked out once here, and
    the JSON text of its hooks is made once (`rendered`)."""

    hooks: tuple[HookResult, ...] = ()
    body: Mapping[str, Any] | None = None  # the transformed body; None when unchanged
    ran: bool = field(init=False, repr=False, compare=False)  # a hook ran (even skipped)
    deny: bool = field(init=False, repr=False, compare=False)  # some hook that ran denies
    failed: bool = field(init=False, repr=False, compare=False)  # one that ran has a false verdict
    _rendered: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _summary: list[dict[str, Any]] | None = field(default=None, init=False, repr=False,
                                                  compare=False)

    def __post_init__(self) -> None:
        deny = failed = False
        for hook in self.hooks:  # a loop, not any() over generators: this runs per request
            if not hook.skipped:
                deny = deny or hook.deny
                failed = failed or not hook.verdict
        self.ran, self.deny, self.failed = bool(self.hooks), deny, failed

    def to_json(self) -> list[dict[str, Any]]:
        return [h.to_json() for h in self.hooks]

    def rendered(self) -> bytes:
        """`to_json()` as JSON text, made on first use and kept. The pipeline asks for it
        while the upstream call is in flight, so that an answer only splices it in."""
        if self._rendered is None:  # the checks written by orjson itself (CheckResult)
            self._rendered = orjson.dumps([hook._json(hook.checks) for hook in self.hooks])
        return self._rendered

    def summary(self) -> list[dict[str, Any]]:
        """The hooks as a log keeps them (`summarised`), made on first use and kept. The
        pipeline asks for it with `rendered`, while the upstream call is in flight."""
        if not self.hooks:
            return []  # a fresh list: NOTHING_RAN is one object for every request
        if self._summary is None:  # (shared by whoever asks: a row encodes it at once)
            self._summary = [summarised(hook) for hook in self.hooks]
        return self._summary


NOTHING_RAN = PhaseResult()
SUMMARY_TEXT_LIMIT = 200  # characters of an explanation, an error message, a hook id


def summarised(hook: HookResult) -> dict[str, Any]:
    """A hook's result as a usage row keeps it: Portkey's hook object without what can quote
    the text checked, nor what only restates a default (see gateway/usage/verdicts.py).

    Always: the hook's id, type, verdict, execution time and start, and per check its id,
    verdict and execution time. Only where true: the hook's deny (it denied), async and
    transformed, a check's transformed and fail_on_error. A check that errored adds its
    error, and one whose verdict is false the `explanation` its data gives (why it failed; a
    passing check's restates its parameters). Strings are cut to SUMMARY_TEXT_LIMIT
    characters."""
    if hook.skipped:
        return {"id": _cut(hook.id), "type": hook.type, "skipped": True}
    checks = []
    for check in hook.checks:  # one loop, made for every guarded request's row
        kept: dict[str, Any] = {"id": check.id, "verdict": check.verdict,
                                "execution_time": check.execution_time}
        checks.append(kept)
        error = check.error
        if check.verdict and error is None and not (check.transformed or check.fail_on_error):
            continue  # the common case: nothing more to keep
        if error is not None:  # (a check can pass with an error: a hook in the wrong phase)
            kept["error"] = {"name": _cut(error.name), "message": _cut(error.message)}
        if not check.verdict:
            data = check.data
            explanation = data.get("explanation") if isinstance(data, dict) else None
            if isinstance(explanation, str):
                kept["explanation"] = _cut(explanation)
        if check.transformed:
            kept["transformed"] = True
        if check.fail_on_error:
            kept["fail_on_error"] = True
    kept = {"id": _cut(hook.id), "type": hook.type, "verdict": hook.verdict,
            "execution_time": hook.execution_time, "created_at": hook.created_at,
            "checks": checks}
    if hook.deny:
        kept["deny"] = True
    if hook.is_async:
        kept["async"] = True
    if hook.transformed:
        kept["transformed"] = True
    return kept


def _cut(text: str) -> str:
    return text if len(text) <= SUMMARY_TEXT_LIMIT else text[:SUMMARY_TEXT_LIMIT - 1] + "…"


def hook_results(before: PhaseResult, after: PhaseResult | None = None) -> dict[str, Any]:
    """The `hook_results` object a response carries."""
    return {"before_request_hooks": before.to_json(),
            "after_request_hooks": [] if after is None else after.to_json()}


def rendered_hook_results(before: PhaseResult, after: PhaseResult | None = None) -> bytes:
    """`hook_results(before, after)` as JSON text, from each phase's `rendered()`."""
    return b"".join(hook_results_parts(before, after))


def hook_results_parts(before: PhaseResult,
                       after: PhaseResult | None = None) -> tuple[bytes, ...]:
    """`rendered_hook_results` in pieces, for a caller joining them with bytes of its own."""
    return (b'{"before_request_hooks":', before.rendered(), b',"after_request_hooks":',
            b"[]" if after is None else after.rendered(), b"}")


def elapsed_ms(started: float) -> float:
    return milliseconds(time.perf_counter() - started)


def milliseconds(seconds: float) -> float:
    """A duration (>= 0) in milliseconds to the microsecond: round(x * 1000, 3), but without
    round()'s exact decimal conversion (a third of a check's bookkeeping here)."""
    return int(seconds * 1_000_000 + 0.5) / 1000


def iso(epoch: float) -> str:
    """JavaScript's Date.toJSON form: `2025-01-01T00:00:00.000Z`. The last one made is kept,
    and the last second's text: a request's hooks and checks mostly start within the same
    millisecond, and requests within the same second. (Each cache is one tuple, replaced
    whole: safe from the guardrail threads.)"""
    global _last_iso, _last_second
    millis = int(epoch * 1000)
    last = _last_iso
    if last[0] == millis:
        return last[1]
    seconds, fraction = divmod(millis, 1000)
    second = _last_second
    if second[0] != seconds:
        second = _last_second = (
            seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    text = second[1] + _MILLIS[fraction]
    _last_iso = (millis, text)
    return text


_last_iso: tuple[int | None, str] = (None, "")  # (None: no time is -1, even before 1970)
_last_second: tuple[int | None, str] = (None, "")
_MILLIS = tuple(f".{fraction:03d}Z" for fraction in range(1000))  # (a format costs more)

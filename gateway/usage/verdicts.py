"""What a usage row keeps of a request's guardrail results (columns `hook_results` and
`hooks_failed`, migration 0006).

`hook_results` is Portkey's `hook_results` object (gateway/guardrails/results.py) cut to what
an operator filters and reads by (`results.summarised`): per hook its id, type, verdict,
execution time and start, and deny, async and transformed where true; per check its id,
verdict and execution time, transformed and fail_on_error where true, its error where it
errored, and, where its verdict is false, the `explanation` its data gives. The rest of a
check's `data` is not kept: it can quote the request or the answer (matched text, text
excerpts, a webhook's whole answer), which a row holds only when body logging is on, and it
can be large; nor is a passing check's explanation, which restates its parameters. Strings
are capped, so a row's share is about 60 bytes a passing check and at most about 750 a failing
one, whatever the text checked.
Each phase's part is made once (`PhaseResult.summary`); the input hooks' while the upstream
call is in flight.
"""

from __future__ import annotations

from typing import Any

from gateway.guardrails.results import PhaseResult

_NONE_RAN = (None, None)


def columns(before: PhaseResult | None,
            after: PhaseResult | None) -> tuple[dict[str, Any] | None, bool | None]:
    """The row's `hook_results` and `hooks_failed`."""
    if before is None and after is None:  # no guardrails: most rows, so first and cheap
        return _NONE_RAN
    return stored_hook_results(before, after), hooks_failed(before, after)


def stored_hook_results(before: PhaseResult | None,
                        after: PhaseResult | None) -> dict[str, Any] | None:
    """The row's `hook_results`; None when no hook ran (async hooks report later, not here)."""
    if not ((before is not None and before.ran) or (after is not None and after.ran)):
        return None
    return {"before_request_hooks": _phase(before), "after_request_hooks": _phase(after)}


def hooks_failed(before: PhaseResult | None, after: PhaseResult | None) -> bool | None:
    """The row's `hooks_failed`: a hook that ran failed (denying or not); None: none ran."""
    failed = None
    if before is not None and before.ran:
        failed = before.failed
    if after is not None and after.ran:
        failed = bool(failed) or after.failed
    return failed


def _phase(phase: PhaseResult | None) -> list[dict[str, Any]]:
    return [] if phase is None else phase.summary()

"""What a usage row keeps of a request's guardrail results (columns `hook_results` and
`hooks_failed`, migration 0006).

`hook_results` is Portkey's `hook_results` object (gateway/guardrails/results.py) cut to what
an operator filters and reads by: per hook its id, type, verdict, deny, async, transformed,
execution time and start; per check its id, verdict, error, execution time, transformed,
fail_on_error, and the `explanation` its data gives. The rest of a check's `data` is not
kept: it can quote the request or the answer (matched text, text excerpts, a webhook's whole
answer), which a row holds only when body logging is on, and it can be large. Strings are
capped (TEXT_LIMIT), so a row's share is about 150 bytes a check whatever the text checked.
"""

from __future__ import annotations

from typing import Any

from gateway.guardrails.results import CheckResult, PhaseResult, iso

TEXT_LIMIT = 200  # characters of an explanation, an error message, a hook id
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


def check_verdict(check: CheckResult) -> str:
    """pass, fail or error: how the metrics count a check (an error is fail-open unless the
    check sets fail_on_error, but it is counted as an error either way)."""
    if check.error is not None:
        return "error"
    return "pass" if check.verdict else "fail"


def _phase(phase: PhaseResult | None) -> list[dict[str, Any]]:
    """One loop over hooks and checks (made for every guarded request's row)."""
    if phase is None:
        return []
    hooks = []
    for hook in phase.hooks:
        hook_id = _cut(hook.id)
        if hook.skipped:
            hooks.append({"id": hook_id, "type": hook.type, "skipped": True})
            continue
        checks = []
        for check in hook.checks:
            error, data = check.error, check.data
            explanation = data.get("explanation") if isinstance(data, dict) else None
            checks.append({
                "id": check.id, "verdict": check.verdict,
                "error": None if error is None else {"name": _cut(error.name),
                                                     "message": _cut(error.message)},
                "execution_time": check.execution_time, "transformed": check.transformed,
                "fail_on_error": check.fail_on_error,
                "explanation": _cut(explanation) if isinstance(explanation, str) else None})
        hooks.append({"id": hook_id, "type": hook.type, "verdict": hook.verdict,
                      "deny": hook.deny, "async": hook.is_async,
                      "transformed": hook.transformed, "execution_time": hook.execution_time,
                      "created_at": iso(hook.created_at), "checks": checks})
    return hooks


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT - 1] + "…"

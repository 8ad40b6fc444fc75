"""From verdicts to the answer: 446 when a hook denies, 246 when one failed, `hook_results`.

Portkey's rules (src/handlers/responseHandlers.ts), for the pipeline to apply:

- a before-request phase that denies: no upstream call; raise `HooksFailed(before)` (446,
  `hooks_failed`, `hook_results`). A fallback without `on_status_codes` moves on to its next
  target on a 446, as on any non-2xx; with them, only if 446 is listed;
- an after-request phase that denies (not on a stream): the answer is dropped; raise
  `HooksFailed(before, after)`;
- otherwise the answer goes out with `answer_status(...)`: 246 when the upstream said 200 and
  some hook of either phase failed, else the upstream's status; its body carries
  `hook_results` whenever a hook ran (`with_hook_results`, or `spliced_hook_results` on the
  answer's bytes as they came). 246 is a success: fallback stops.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError
from gateway.guardrails.results import PhaseResult, hook_results, hook_results_parts

DENIED = 446
FLAGGED = 246
MESSAGE = ("The guardrail checks defined in the config failed. You can find more information "
           "in the `hook_results` object.")


class HooksFailed(GatewayError):
    """A hook with `deny: true` failed: 446, the envelope plus `hook_results`."""

    status = DENIED
    type = "hooks_failed"

    def __init__(self, before: PhaseResult, after: PhaseResult | None = None) -> None:
        super().__init__(MESSAGE)
        self.before = before
        self.after = after
        self.extra["hook_results"] = hook_results(before, after)


def answer_status(upstream_status: int, before: PhaseResult,
                  after: PhaseResult | None = None) -> int:
    """The status of an answer no hook denied."""
    failed = before.failed or (after is not None and after.failed)
    return FLAGGED if upstream_status == 200 and failed else upstream_status


def with_hook_results(body: dict[str, Any], before: PhaseResult,
                      after: PhaseResult | None = None) -> dict[str, Any]:
    """`body` with `hook_results` added when any hook ran (the same dict otherwise)."""
    if not before.ran and (after is None or not after.ran):
        return body
    return {**body, "hook_results": hook_results(before, after)}


_JSON_SPACE = b" \t\r\n"
_OPEN, _CLOSE = ord("{"), ord("}")


def spliced_hook_results(content: bytes, before: PhaseResult,
                         after: PhaseResult | None = None) -> bytes | None:
    """`content`, the bytes of a JSON object, with `hook_results` added as its last member
    without decoding and encoding it again (the answer as it came, as `with_hook_results`
    would have it); `content` itself when no hook ran. None where that is not safe, for the
    caller to decode instead: bytes that do not end an object, or that may hold the key
    already (as `"hook_results"`, or spelled with a `\\u` escape), which the decoded
    object's `hook_results` would replace."""
    if not before.ran and (after is None or not after.ran):
        return content
    end = content.rstrip(_JSON_SPACE)  # (content itself when there is nothing to strip)
    # Bytes are read by index and searched with find: their `startswith`, `endswith` and
    # `find` parse their arguments the old way (~400 instructions a call under callgrind),
    # and `in` first tries its operand as an integer, formatting and dropping a TypeError.
    if not end or end[-1] != _CLOSE or content.lstrip(_JSON_SPACE)[0] != _OPEN \
            or content.find(b'"hook_results"') >= 0 or content.find(b"\\u") >= 0:
        return None
    members = end[:-1]
    # Before the closing brace is the end of a value, or the opening brace of `{}`.
    comma = b"" if members.rstrip(_JSON_SPACE)[-1] == _OPEN else b","
    return b"".join((members, comma, b'"hook_results":', *hook_results_parts(before, after),
                     b"}"))

"""Hook points: where guardrails and mutators (Portkey's before/after request hooks) run for
each target the plan tries, through the shared `GuardrailRunner` (gateway/guardrails/).

- `before_request`: once the target's body is prepared, before the cache and the first
  attempt. A denying hook that fails is a 446 (`HooksFailed`) and no upstream call; a
  mutator's body replaces the prepared one (so the upstream, and the cache key, see it).
- `after_answer`: on the target's answer, cache hits included. A JSON answer that a denying
  hook fails is a 446 (the answer is dropped, its usage still billed); one that any hook
  fails goes out as 246; either way it carries `hook_results`, spliced into the answer's
  bytes as they came unless a hook changed the answer (not decoded and encoded again for it).
  The input hooks' part of it is rendered while the upstream call is in flight (a callback
  the loop runs once this task waits), so that the answer only splices it in; so is the
  usage row's summary of it.
  A stream cannot be taken back once its first byte is out: `hook_results` of the input
  hooks is its first event, and output hooks run on the assembled answer at its end and
  report in a last event (they can flag it, never deny it; the stream's status stays 200).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson

from gateway.cache.replay import StreamAssembler
from gateway.contracts.answer import Answer, JSONAnswer, StreamAnswer
from gateway.contracts.outcome import Outcome
from gateway.contracts.plan import Leaf
from gateway.guardrails.event import ENDPOINT_REQUEST_TYPES, HookEvent
from gateway.guardrails.hooks import AFTER, BEFORE, Hook, HookSet
from gateway.guardrails.results import NOTHING_RAN, PhaseResult, hook_results
from gateway.guardrails.runner import GuardrailRunner
from gateway.guardrails.status import (
    HooksFailed,
    answer_status,
    spliced_hook_results,
    with_hook_results,
)
from gateway.pipeline.prepare import Prepared
from providers.base import Endpoint

# By the canonical endpoint, keyed by the member itself (an Enum's `.value` is a slow property):
# a Messages or Responses request is a chat body by now.
_REQUEST_TYPES = {endpoint: ENDPOINT_REQUEST_TYPES.get(endpoint.value) for endpoint in Endpoint}


def hooks_of(outcome: Outcome, leaf: Leaf) -> HookSet:
    """The target's own hooks (with its config's defaults), the request's default-guardrail
    headers, then the operator's defaults of the caller's API key and of the target's
    virtual key, which no client config removes."""
    hooks = leaf.hooks.plus(outcome.request.default_hooks)
    principal = outcome.principal
    if principal is not None:
        hooks = hooks.plus(principal.default_hooks)
    if leaf.virtual_key is not None:
        hooks = hooks.plus(leaf.virtual_key.default_hooks)
    return hooks


def _request_type(outcome: Outcome, prepared: Prepared) -> str | None:
    """None for passthrough and model lists: no hooks run on them."""
    if prepared.body is None:
        return None
    return _REQUEST_TYPES.get(outcome.request.endpoint)


def _event(outcome: Outcome, leaf: Leaf, prepared: Prepared) -> HookEvent | None:
    request_type = _request_type(outcome, prepared)
    if request_type is None or prepared.body is None:  # (the body: for the type checker)
        return None
    return HookEvent(request_type, prepared.body, leaf.provider, outcome.request.metadata,
                     prepared.stream)


async def before_request(runner: GuardrailRunner, hooks: HookSet, outcome: Outcome,
                         leaf: Leaf, prepared: Prepared, *, logged: bool = True) -> Prepared:
    """`hooks`: the target's (`hooks_of`); a target with hooks was prepared translated.
    `logged`: a usage row will be written (it keeps a summary of the results)."""
    outcome.hooks_before = outcome.hooks_after = None  # this target's, not an earlier one's
    if not hooks.before:
        return prepared
    event = _event(outcome, leaf, prepared)
    if event is None:
        return prepared
    before = runner.run(BEFORE, hooks.before, event)
    if not isinstance(before, PhaseResult):  # the general path's coroutine
        before = await before
    outcome.hooks_before = before
    if before.deny:
        raise HooksFailed(before)
    if before.ran and (logged or not prepared.stream):  # once this task waits (on the
        asyncio.get_running_loop().call_soon(  # upstream), not after the answer
            _render, before, logged, not prepared.stream)
    if before.body is not None:  # a mutator's body, which a native target is not sent
        return replace(prepared, body=dict(before.body), native=None)
    return prepared


def _render(phase: PhaseResult, summary: bool, rendered: bool) -> None:
    """Ahead of the answer: the usage row's summary, then the answer's JSON (not for a
    stream, whose first event is built from the results themselves). The summary first:
    orjson reads a result's `__dict__`, after which Python reads its fields 2.5 times slower.
    A failure here is left for the answer's own render, or the row's, to raise."""
    try:  # (not contextlib.suppress: three Python calls more, for every guarded request)
        if summary:
            phase.summary()
        if rendered:
            phase.rendered()
    except Exception:  # noqa: S110 (raised again where the result is used)
        pass


async def after_answer(runner: GuardrailRunner, hooks: HookSet, outcome: Outcome, leaf: Leaf,
                       prepared: Prepared, answer: Answer) -> Answer:
    before = outcome.hooks_before or NOTHING_RAN
    after_hooks = hooks.after
    if not (before.ran or after_hooks):
        return answer
    # Input hooks that ran were given a request type; with output hooks, check it here.
    if after_hooks and _request_type(outcome, prepared) is None:
        return answer
    # The event only for output hooks: input hooks' results are all an answer needs.
    event = _event(outcome, leaf, prepared) if after_hooks else None
    if isinstance(answer, JSONAnswer):
        if event is None:  # input hooks only: no coroutine to run
            return _answered(answer, before, None, None)
        return await _checked_json(runner, outcome, event, before, after_hooks, answer)
    if isinstance(answer, StreamAnswer):
        if event is not None:
            answer.rest = _checked_at_end(runner, outcome, event, before, after_hooks,
                                          list(answer.first), answer.rest)
        if before.ran:
            answer.first.insert(0, {"hook_results": hook_results(before)})
    return answer


async def _checked_json(runner: GuardrailRunner, outcome: Outcome, event: HookEvent,
                        before: PhaseResult, after_hooks: tuple[Hook, ...],
                        answer: JSONAnswer) -> Answer:
    answered = event.answered(orjson.loads(answer.content), answer.status)
    after = runner.run(AFTER, after_hooks, answered)
    if not isinstance(after, PhaseResult):
        after = await after
    outcome.hooks_after = after
    if after.deny:
        raise HooksFailed(before, after)
    return _answered(answer, before, after, None if after.body is None else dict(after.body))


def _answered(answer: JSONAnswer, before: PhaseResult, after: PhaseResult | None,
              changed: dict[str, Any] | None) -> JSONAnswer:
    """The answer no hook denied: its status (246 when one failed) and `hook_results`.
    `changed`: the answer as an output hook transformed it."""
    status = answer_status(answer.status, before, after)
    content = None if changed is not None else \
        spliced_hook_results(answer.content, before, after)
    if content is None:
        body = changed if changed is not None else orjson.loads(answer.content)
        content = orjson.dumps(with_hook_results(body, before, after))
    return JSONAnswer(status, content, answer.headers, answer.native)


async def _checked_at_end(runner: GuardrailRunner, outcome: Outcome, event: HookEvent,
                          before: PhaseResult, after_hooks: tuple[Hook, ...],
                          first: list[dict[str, Any]], rest: AsyncIterator[dict[str, Any]],
                          ) -> AsyncIterator[dict[str, Any]]:
    assembler = StreamAssembler()
    for chunk in first:
        assembler.feed(chunk)
    async for chunk in rest:
        assembler.feed(chunk)
        yield chunk
    whole = assembler.result()
    if whole is None:
        return
    after = await runner.after_request(after_hooks, event.answered(whole, 200))
    outcome.hooks_after = after
    if after.ran:
        yield {"hook_results": hook_results(before, after)}

"""The runner: one phase's hooks over an event, into verdicts and a transformed body.

The pipeline calls it at two points for each target it tries (hooks run per target, as in
Portkey): `before_request(hooks.before, event)` once the body the target is sent is final,
and `after_request(hooks.after, event)` with the answer. Within a phase:

1. Hooks that do not apply are skipped (`{id, type, skipped: true}`): request types other
   than chatComplete, complete, embed, messages and responses; embeddings after the request
   or with a mutator; after-request hooks when the upstream status is not 200; async mutators
   (a body cannot be changed once it has gone).
2. Mutator hooks run first, one after another in config order, each check on the body the
   previous one left. Portkey starts every hook at once, so whether a guardrail sees a
   mutator's output is a race there; here guardrails always check what will be sent.
3. Guardrail hooks then run at once on that body. A `sequential` hook runs its checks in
   order, each seeing the body earlier checks (webhooks) transformed; otherwise its checks
   run at once and their transformations are applied afterwards, in order.
4. `async: true` guardrail hooks start after the others, off the request's critical path:
   they never delay, deny or flag the request; their results go to `on_async` (the gateway
   counts their checks in its metrics), and a failing one is logged (its id and failed
   checks). Portkey's open-source gateway never runs them at all.

Checks without I/O run on the event loop, where they cost microseconds, unless the text they
read exceeds OFFLOAD_TEXT_CHARS: then a hook's checks run in the runner's own small thread
pool (RE2 releases the GIL while it matches), so a large body never stalls other requests.
Checks that call out (webhook, log) run concurrently, each bound by its timeout.

The plain path: when every hook of a phase is skipped or `Hook.plain` (a synchronous
guardrail whose checks all run in process and all see the phase's body) and that body's text
is under OFFLOAD_TEXT_CHARS, which is the common case (input checks on a prompt), the phase
runs as one loop with no coroutine (`run`, which the pipeline calls), one wall clock
read per phase and one monotonic read per hook and per check. Its results are the ones the
general path gives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from gateway.guardrails.event import REQUEST_TYPES, HookEvent, Subject
from gateway.guardrails.hooks import AFTER, BEFORE, MUTATOR, Check, Hook, Phase
from gateway.guardrails.outbound import Outbound
from gateway.guardrails.results import (
    NOTHING_RAN,
    SUMMARY_TEXT_LIMIT,
    CheckError,
    CheckOutcome,
    CheckResult,
    HookResult,
    PhaseResult,
    elapsed_ms,
    feedback,
    hook_result,
    iso,
    skipped,
)
from gateway.net.hostguard import HostGuard

log = logging.getLogger("gateway.guardrails")

# Above this many characters of text, a hook's checks run off the event loop. Below it the
# worst check (a 200-instruction RE2 program whose DFA thrashes, about 125 ns a byte) costs
# about 2 ms; typical checks cost microseconds, less than a thread hop.
OFFLOAD_TEXT_CHARS = 16_384
_CHECK_CRASHED = CheckError("Error executing check", "Check error")

AsyncResults = Callable[[Phase, HookResult], None]


class GuardrailRunner:
    def __init__(self, http: httpx.AsyncClient, guard: HostGuard, *,
                 on_async: AsyncResults | None = None,
                 offload_chars: int = OFFLOAD_TEXT_CHARS, threads: int = 2) -> None:
        self.outbound = Outbound(http, guard)
        self.offload_chars = offload_chars
        self._on_async = on_async
        self._pool = ThreadPoolExecutor(max_workers=threads,
                                        thread_name_prefix="gateway-guardrails")
        self._pending: set[asyncio.Task[None]] = set()

    async def before_request(self, hooks: Sequence[Hook], event: HookEvent) -> PhaseResult:
        """Run before the upstream call on `event.request` (the body as it will be sent)."""
        result = self.run(BEFORE, hooks, event)
        return result if isinstance(result, PhaseResult) else await result

    async def after_request(self, hooks: Sequence[Hook], event: HookEvent) -> PhaseResult:
        """Run on `event.response`, the answer of `event.request`, with `event.status`."""
        result = self.run(AFTER, hooks, event)
        return result if isinstance(result, PhaseResult) else await result

    def run(self, phase: Phase, hooks: Sequence[Hook],
            event: HookEvent) -> PhaseResult | Coroutine[Any, Any, PhaseResult]:
        """The phase's result, at once when it takes the plain path; otherwise the coroutine
        that runs it, for the caller to await. The pipeline calls this rather than
        `before_request`/`after_request`: two coroutines a request are a tenth of the plain
        path's cost."""
        if not hooks:
            return NOTHING_RAN
        subject = Subject.of(phase, event)
        if _all_plain(hooks) and len(subject.text) <= self.offload_chars:
            return _plain_phase(phase, hooks, event, subject)
        return self._phase(phase, hooks, event, subject)

    async def aclose(self) -> None:
        """Let async hooks still running finish (shutdown), then stop the threads."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        self._pool.shutdown(wait=False)

    async def _phase(self, phase: Phase, hooks: Sequence[Hook], event: HookEvent,
                     subject: Subject) -> PhaseResult:
        results: dict[int, HookResult] = {}
        mutators: list[int] = []
        guardrails: list[int] = []
        later: list[Hook] = []
        for i, hook in enumerate(hooks):
            if _skips(hook, phase, event):
                results[i] = skipped(hook)
            elif hook.is_async:
                later.append(hook)
            else:
                (mutators if hook.type == MUTATOR else guardrails).append(i)
        for i in mutators:
            results[i], subject = await self._hook(hooks[i], subject, sequential=True)
        runs = [self._hook(hooks[i], subject, hooks[i].sequential) for i in guardrails]
        waits = len(runs) > 1 and any(hooks[i].io for i in guardrails)
        for i, (result, after) in zip(guardrails, await _together(runs, waits), strict=True):
            results[i] = result
            if after.transformed and after.json is not subject.json:
                subject = subject.replaced(after.json or {})
        for hook in later:
            self._start(phase, hook, subject)
        body = subject.json if subject.transformed else None
        return PhaseResult(tuple(results[i] for i in sorted(results)), body)

    async def _hook(self, hook: Hook, subject: Subject,
                    sequential: bool) -> tuple[HookResult, Subject]:
        started, created = time.perf_counter(), time.time()
        checks = hook.enabled
        if sequential:
            results = []
            for check in checks:
                result, outcome = (await self._io([check], subject))[0] if check.io else \
                    (await self._cpu([check], subject))[0]
                results.append(result)
                if outcome.json is not None:
                    subject = subject.replaced(outcome.json)
        else:
            io = [c for c in checks if c.io]
            cpu = [c for c in checks if not c.io]
            if io and cpu:
                done_cpu, done_io = await asyncio.gather(self._cpu(cpu, subject),
                                                         self._io(io, subject))
            else:
                done_cpu = await self._cpu(cpu, subject) if cpu else []
                done_io = await self._io(io, subject) if io else []
            cpu_left, io_left = iter(done_cpu), iter(done_io)
            outcomes = [next(io_left) if c.io else next(cpu_left) for c in checks]
            results = [r for r, _ in outcomes]
            for _, outcome in outcomes:
                if outcome.json is not None:
                    subject = subject.replaced(outcome.json)
        return hook_result(hook, results, started, created), subject

    async def _cpu(self, checks: list[Check],
                   subject: Subject) -> list[tuple[CheckResult, CheckOutcome]]:
        if len(subject.text) <= self.offload_chars:
            return [_run(check, subject) for check in checks]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, lambda: [_run(check, subject) for check in checks])

    async def _io(self, checks: list[Check],
                  subject: Subject) -> list[tuple[CheckResult, CheckOutcome]]:
        return list(await asyncio.gather(*(self._call(c, subject) for c in checks)))

    async def _call(self, check: Check, subject: Subject) -> tuple[CheckResult, CheckOutcome]:
        started, created = time.perf_counter(), time.time()
        try:
            outcome = await check.spec.run(check, subject, self.outbound)
        except Exception:  # a crashing check is an errored check, as in Portkey
            log.exception("guardrail check %s crashed", check.id)
            outcome = CheckOutcome(False, None, _CHECK_CRASHED)
        return _stamp(check, outcome, started, created), outcome

    def _start(self, phase: Phase, hook: Hook, subject: Subject) -> None:
        task = asyncio.get_running_loop().create_task(self._background(phase, hook, subject))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _background(self, phase: Phase, hook: Hook, subject: Subject) -> None:
        try:
            result, _ = await self._hook(hook, subject, hook.sequential)
            if not result.verdict:  # the answer and its row are gone: only here is it told
                log.info("async hook %r failed: %s", hook.id[:SUMMARY_TEXT_LIMIT],
                         ", ".join(check.id for check in result.checks if not check.passes))
            if self._on_async is not None:
                self._on_async(phase, result)
        except Exception:  # the top of a background task: logged, never raised into a request
            log.exception("async hook %s failed", hook.id)


async def _together(runs: list[Coroutine[Any, Any, tuple[HookResult, Subject]]],
                    waits: bool) -> list[tuple[HookResult, Subject]]:
    """Hooks at once; one after another when none waits on I/O (no tasks to create)."""
    if waits and len(runs) > 1:
        return list(await asyncio.gather(*runs))
    return [await run for run in runs]


def _all_plain(hooks: Sequence[Hook]) -> bool:
    for hook in hooks:  # noqa: SIM110 (a loop: all() over a generator costs more here)
        if not hook.plain:
            return False
    return True


def _plain_phase(phase: Phase, hooks: Sequence[Hook], event: HookEvent,
                 subject: Subject) -> PhaseResult:
    """The general path's results for plain hooks (see the module docstring), in one loop.

    Each check is timed from the end of the one before (the clock is read once per check),
    and its `created_at` is the phase's wall clock plus the monotonic time since; a hook's
    is its first check's. Written out (durations, a hook's verdict) rather than through the
    helpers the general path calls: a Python call costs about what the work it would do
    here costs."""
    clock = time.perf_counter
    wall, base = time.time(), clock()
    results: list[HookResult] = []
    body = subject  # what the hooks leave: the last transformation, in config order
    for hook in hooks:
        if _skips(hook, phase, event):
            results.append(skipped(hook))
            continue
        started = now = clock()
        checks: list[CheckResult] = []
        verdict, transformed = True, False
        seen = subject
        for check in hook.enabled:
            try:
                outcome: CheckOutcome = check.spec.run(check, subject)
            except Exception:  # a crashing check is an errored check, as in Portkey
                log.exception("guardrail check %s crashed", check.id)
                outcome = CheckOutcome(False, None, _CHECK_CRASHED)
            ended = clock()
            passed, error = outcome.verdict, outcome.error
            checks.append(CheckResult(  # (positional: keywords cost a dict per call)
                check.id, passed, outcome.data, error,
                int((ended - now) * 1_000_000 + 0.5) / 1000,  # milliseconds()
                iso(wall + (now - base)), outcome.transformed, None, check.fail_on_error))
            # CheckResult.passes and HookResult's verdict (hook_result), written out.
            verdict = verdict and (passed or (error is not None and not check.fail_on_error))
            if outcome.transformed:
                transformed = True
            if outcome.json is not None:
                seen = seen.replaced(outcome.json)
            now = ended
        results.append(HookResult(
            hook.id, hook.type, verdict, hook.deny and not verdict, hook.is_async,
            transformed, tuple(checks), None if hook.on_success is None and
            hook.on_fail is None else feedback(hook, checks),
            int((now - started) * 1_000_000 + 0.5) / 1000,
            checks[0].created_at if checks else iso(wall + (started - base))))
        if seen.transformed and seen.json is not body.json:
            body = body.replaced(seen.json or {})
    return PhaseResult(tuple(results), body.json if body.transformed else None)


def _skips(hook: Hook, phase: Phase, event: HookEvent) -> bool:
    kind = event.request_type
    return (kind not in REQUEST_TYPES
            or (kind == "embed" and (phase == AFTER or hook.type == MUTATOR))
            or (phase == AFTER and event.status is not None and event.status != 200)
            or (hook.type == MUTATOR and hook.is_async))


def _run(check: Check, subject: Subject) -> tuple[CheckResult, CheckOutcome]:
    started, created = time.perf_counter(), time.time()
    try:
        outcome: CheckOutcome = check.spec.run(check, subject)
    except Exception:  # a crashing check is an errored check, as in Portkey
        log.exception("guardrail check %s crashed", check.id)
        outcome = CheckOutcome(False, None, _CHECK_CRASHED)
    return _stamp(check, outcome, started, created), outcome


def _stamp(check: Check, outcome: CheckOutcome, started: float,
           created: float) -> CheckResult:
    return CheckResult(check.id, outcome.verdict, outcome.data, outcome.error,
                       elapsed_ms(started), iso(created), outcome.transformed,
                       fail_on_error=check.fail_on_error)

"""The guardrail engine's own cost per request, in process (no HTTP): issue 25's budget.

Three input checks (contains, regexMatch, wordCount) on a 2 KB last message, as one
shorthand hook and as three hooks, against no hooks, side by side in one run; then the same
with `hook_results` rendered into the answer (orjson), as a 200 carrying them would be.

    .venv/bin/python -m bench.guardrails_engine [--rounds 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from gateway.guardrails import GuardrailRunner, HookEvent, with_hook_results
from gateway.guardrails.config import parse_node
from gateway.net.hostguard import HostGuard

CHECKS = {"contains": {"words": ["forbidden", "secret"], "operator": "none"},
          "regexMatch": {"rule": r"\b\d{3}-\d{2}-\d{4}\b", "not": True},
          "wordCount": {"minWords": 1, "maxWords": 2000}}
WORDS = "the quick brown fox jumps over the lazy dog and keeps running far away "
MESSAGE = (WORDS * 40)[:2048]
ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}


def _hooks(raw: list[dict[str, Any]]) -> Any:
    node, problems = parse_node({"input_guardrails": raw})
    assert not problems, problems
    return node.before


async def _measure(call: Callable[[], Awaitable[Any]], rounds: int) -> list[float]:
    for _ in range(min(rounds // 10, 2000)):
        await call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def main(rounds: int) -> None:
    event = HookEvent("chatComplete", {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": MESSAGE}]}, provider="openai")
    one_hook = _hooks([{**CHECKS, "deny": True}])
    three_hooks = _hooks([{name: params, "deny": True} for name, params in CHECKS.items()])
    async with httpx.AsyncClient() as http:
        runner = GuardrailRunner(http, HostGuard([]))

        async def rendered(hooks: Any) -> bytes:
            before = await runner.before_request(hooks, event)
            return orjson.dumps(with_hook_results(ANSWER, before))

        cases: dict[str, Callable[[], Awaitable[Any]]] = {
            "no hooks": lambda: runner.before_request((), event),
            "3 checks, 1 hook": lambda: runner.before_request(one_hook, event),
            "3 checks, 3 hooks": lambda: runner.before_request(three_hooks, event),
            "no hooks + render": lambda: rendered(()),
            "1 hook + render": lambda: rendered(one_hook),
            "3 hooks + render": lambda: rendered(three_hooks),
        }
        results = {name: await _measure(call, rounds) for name, call in cases.items()}
        await runner.aclose()
    started = time.perf_counter()
    for _ in range(1000):
        parse_node({"input_guardrails": [{**CHECKS, "deny": True}]})
    parse_us = (time.perf_counter() - started) * 1000
    print(f"2 KB message, {rounds} rounds each; microseconds per call")
    print(f"{'case':22} {'p50':>8} {'p99':>8} {'mean':>8}")
    for name, samples in results.items():
        ordered = sorted(samples)
        print(f"{name:22} {statistics.median(ordered):8.1f} "
              f"{ordered[int(len(ordered) * 0.99)]:8.1f} {statistics.fmean(ordered):8.1f}")
    print(f"parsing the config's hooks once (cached per config): {parse_us:.1f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    asyncio.run(main(parser.parse_args().rounds))

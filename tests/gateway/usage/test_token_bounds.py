"""Local token counts are bounded and counted off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from starlette.datastructures import Headers

from gateway.contracts.identity import NoKeyStore
from gateway.contracts.outcome import EXACT_CHARS, Outcome, TextSample
from gateway.contracts.request import ParsedRequest
from gateway.pipeline.record import Recording
from gateway.pipeline.services import Services
from gateway.routing.config import ConfigCache
from gateway.security.service_accounts import ServiceAccountTokens
from gateway.settings import Settings
from gateway.usage import tokens
from gateway.usage.tokens import count, estimate, estimate_off_loop, sample_tokens
from providers.base import Endpoint

MEGABYTE_OF_A = "a" * 1_000_000


def test_a_megabyte_without_whitespace_is_counted_quickly_and_bounded():
    count("warm up the encoding")
    started = time.perf_counter()
    counted = count(MEGABYTE_OF_A)
    assert time.perf_counter() - started < 0.2  # one call on the whole text took ~0.35 s
    exact = count(MEGABYTE_OF_A[:EXACT_CHARS])
    assert counted == exact + (1_000_000 - EXACT_CHARS) // 4


def test_ordinary_text_is_counted_exactly():
    assert count("hello world") == 2
    assert estimate({"messages": [{"role": "user", "content": "hello world"}]},
                    "hi there") == tokens.Tokens(2, 2, 0, estimated=True)


def test_a_text_sample_keeps_a_capped_prefix_and_counts_every_character():
    sample = TextSample()
    for _ in range(1000):
        sample.add("x" * 10_000)
    assert sample.kept == EXACT_CHARS and sum(map(len, sample.parts)) == EXACT_CHARS
    assert sample.chars == 10_000_000
    assert sample_tokens(sample) >= (10_000_000 - EXACT_CHARS) // 4


async def test_estimates_run_in_a_worker_thread_while_the_loop_keeps_ticking(monkeypatch):
    threads: list[threading.Thread] = []
    real_count = tokens.count

    def spy(text: str) -> int:
        threads.append(threading.current_thread())
        return real_count(text)

    monkeypatch.setattr(tokens, "count", spy)
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    completion = TextSample()
    completion.add(MEGABYTE_OF_A)
    body = {"messages": [{"role": "user", "content": MEGABYTE_OF_A}]}
    counted = await estimate_off_loop(body, completion)
    ticker.cancel()
    assert counted.estimated and counted.completion > 200_000 and counted.prompt > 200_000
    assert threads and threading.main_thread() not in threads
    assert all(t.name.startswith("gateway-tokens") for t in threads)
    assert not gaps or max(gaps) < 0.1


def finished(status: int, text: str = "") -> Outcome:
    outcome = Outcome(ParsedRequest(
        request_id="req-1", trace_id="t", endpoint=Endpoint.CHAT, method="POST",
        path="chat/completions", query="", headers=Headers({}), raw_body=b"{}",
        body={"model": "m", "messages": [{"role": "user", "content": "hello world"}]}))
    outcome.status = status
    outcome.completion.add(text)
    return outcome


async def test_recorders_see_the_estimate_and_shutdown_waits_for_it():
    seen: list[Any] = []
    recording = Recording([lambda outcome: seen.append(outcome.estimated_tokens)])
    services = Services(settings=Settings(_env_file=None), http=None,  # type: ignore[arg-type]
                        host_guard=None, breakers=None,  # type: ignore[arg-type]
                        configs=ConfigCache(), resolver=NoKeyStore(),
                        tokens=ServiceAccountTokens(), recording=recording,
                        guardrails=None)  # type: ignore[arg-type]
    left_mid_stream = finished(499, "Hello there")
    services.record(left_mid_stream)
    assert seen == []  # still being counted: the response did not wait for it
    failed_before_any_text = finished(502)
    services.record(failed_before_any_text)  # nothing to count: recorded at once
    assert seen == [None]
    await services.recording.drain()
    assert seen[1] == tokens.Tokens(2, 2, 0, estimated=True)
    assert not services.recording.counting


def test_every_generated_text_the_client_receives_is_counted():
    from gateway.usage.tokens import completion_text

    message = {"role": "assistant", "content": "A", "refusal": "B",
               "reasoning_content": "C", "reasoning": "D",
               "tool_calls": [{"id": "1", "type": "function",
                               "function": {"name": "E", "arguments": "F"}},
                              {"id": "2", "type": "custom", "custom": {"name": "G", "input": "H"}}],
               "function_call": {"name": "I", "arguments": "J"},
               "audio": {"id": "a", "transcript": "K"}}
    assert completion_text({"choices": [{"message": message}]}) == "ABCDEFGHIJK"
    assert completion_text({"choices": [{"delta": message}]}) == "ABCDEFGHIJK"
    # A stream's tool-call delta carries a piece of the arguments, its name only at first.
    assert completion_text({"choices": [{"delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": '{"city"'}}]}}]}) == '{"city"'
    assert completion_text({"choices": [{"text": "legacy"}]}) == "legacy"
    assert completion_text({"choices": [{"message": {"content": [
        {"type": "text", "text": "part"}]}}]}) == "part"
    assert completion_text({"choices": [{"delta": {"role": "assistant"}}, "junk"]}) == ""

"""The `/v1/responses` cases of bench.load, each measured beside its baseline through the same
gateway, back to back (so the difference is what the Responses dialect adds):

    responses          POST /v1/responses (store: true, the default) vs /v1/chat/completions
    responses-stream   the same, streamed (ends at `response.completed`) vs a chat stream
    responses-nostore  store: false vs /v1/chat/completions (translation alone, no row written)
    responses-chain    previous_response_id at the end of a 20-turn chain vs a fresh
                       /v1/responses request (both stored)

Both sides go to `anyscale` (an OpenAI-compatible provider with no Responses API, so the
request is translated), pointed at the benchmark mock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

import httpx
import orjson

from bench.client import Run, chat_request, load
from bench.harness import cpu_seconds

PROVIDER = "anyscale"
CHAIN_TURNS = 20
ROUNDS = 3  # baseline and case alternate this many times: a busy machine's drift hits both
MODES = ("responses", "responses-stream", "responses-nostore", "responses-chain")
STREAM_END = b"response.completed"


def responses_request(port: int, *, stream: bool, store: bool = True,
                      previous: str | None = None) -> bytes:
    """The raw bytes of one Responses request, as the OpenAI SDK would send it."""
    body: dict[str, object] = {"model": "bench-model", "input": "Say hello to the benchmark.",
                               "stream": stream, "store": store}
    if previous is not None:
        body["previous_response_id"] = previous
    data = orjson.dumps(body)
    head = (f"POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            "content-type: application/json\r\naccept: application/json\r\n"
            f"authorization: Bearer sk-bench\r\nx-portkey-provider: {PROVIDER}\r\n"
            f"content-length: {len(data)}\r\n\r\n")
    return head.encode() + data


async def chain(port: int, turns: int = CHAIN_TURNS) -> str:
    """Make a conversation of `turns` stored responses; the last one's id."""
    previous: str | None = None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for turn in range(turns):
            body: dict[str, object] = {"model": "bench-model", "input": f"Turn {turn}: go on."}
            if previous is not None:
                body["previous_response_id"] = previous
            answer = await client.post("/v1/responses", json=body, headers={
                "authorization": "Bearer sk-bench", "x-portkey-provider": PROVIDER})
            answer.raise_for_status()
            previous = answer.json()["id"]
    assert previous is not None
    return previous


class Paired(NamedTuple):
    """A baseline and its case, each the sum of their alternating runs, and each round's
    req/s of the case over the baseline's (their median moves less with a busy machine's
    drift than the ratio of the sums)."""

    baseline: Run
    case: Run
    ratios: list[float]


async def measure(port: int, pid: int, mode: str, concurrency: int, duration: float,
                  warmup: float, rounds: int = ROUNDS) -> Paired:
    """(baseline, case, ratios) for `mode` at `concurrency` over `rounds` alternating rounds;
    `pid` is the gateway's, whose CPU time each run is charged."""
    stream = mode == "responses-stream"
    if mode == "responses-chain":
        last = await chain(port)
        baseline = responses_request(port, stream=False)
        case = responses_request(port, stream=False, previous=last)
    else:
        baseline = chat_request(port, stream=stream, provider=PROVIDER)
        case = responses_request(port, stream=stream, store=mode != "responses-nostore")
    # A chat stream ends with [DONE], a Responses stream with response.completed.
    return await alternate(pid, rounds, lambda data, end: load(
        port, data, concurrency, duration / rounds, warmup / rounds, stream=stream, end=end),
        (baseline, b"[DONE]"), (case, STREAM_END))


async def alternate(pid: int, rounds: int,
                    run: Callable[[bytes, bytes], Awaitable[Run]],
                    baseline: tuple[bytes, bytes], case: tuple[bytes, bytes]) -> Paired:
    """`rounds` rounds of the baseline then the case, each a (request, stream end) pair."""
    runs: tuple[list[Run], list[Run]] = ([], [])
    for _ in range(rounds):
        for (data, end), kept in ((baseline, runs[0]), (case, runs[1])):
            kept.append(await _charged(pid, lambda d=data, e=end: run(d, e)))
    ratios = [c.rps / b.rps for b, c in zip(*runs, strict=True) if b.rps]
    return Paired(_merged(runs[0]), _merged(runs[1]), ratios)


async def _charged(pid: int, run: Callable[[], Awaitable[Run]]) -> Run:
    before = cpu_seconds(pid)
    result = await run()
    result.cpu_seconds = cpu_seconds(pid) - before
    return result


def _merged(runs: list[Run]) -> Run:
    merged = Run(runs[0].concurrency, runs[0].stream)
    for run in runs:
        merged.results += run.results
        merged.seconds += run.seconds
        merged.failures += run.failures
        merged.completed += run.completed
    merged.cpu_seconds = sum(run.cpu_seconds for run in runs)
    return merged


def verdict(row: dict[str, object], baseline: dict[str, float],
            through: dict[str, float]) -> list[str]:
    """Issue 24's targets for one row."""
    return dialect_verdict(row, baseline, through, stream_mode="responses-stream",
                           baseline_name="its baseline",
                           p50_target=1.0 if row["mode"] == "responses-chain" else 0.2,
                           judge_rps=row["mode"] != "responses-chain")


def dialect_verdict(row: dict[str, object], baseline: dict[str, float],
                    through: dict[str, float], *, stream_mode: str, baseline_name: str,
                    p50_target: float = 0.2, judge_rps: bool = True) -> list[str]:
    """Added p50 (and first byte, streamed) at c=1, req/s at c=64 (the median of the rounds'
    ratios where the row has them): the Messages and Responses targets alike."""
    mode, concurrency = row["mode"], row["concurrency"]
    lines = [f"{mode} c={concurrency}: gateway CPU {through['cpu_us_per_request']:.0f} us/req "
             f"vs {baseline['cpu_us_per_request']:.0f} for {baseline_name}"]
    if concurrency == 1:
        added = through["p50_ms"] - baseline["p50_ms"]
        lines.append(_line(f"{mode}: added p50 at c=1", f"{added:.3f} ms", added < p50_target,
                           f"< {p50_target:g} ms"))
        if mode == stream_mode:
            first = through["ttfb_p50_ms"] - baseline["ttfb_p50_ms"]
            lines.append(_line(f"{mode}: added first byte at c=1", f"{first:.3f} ms",
                               first < 0.3, "< 0.3 ms"))
    if concurrency == 64 and judge_rps:
        paired = row.get("paired_rps_ratio")
        ratio = paired if isinstance(paired, float) else \
            (through["rps"] / baseline["rps"] if baseline["rps"] else 0.0)
        lines.append(_line(f"{mode}: req/s at c=64", f"{ratio:.0%} of chat", ratio >= 0.85,
                           ">= 85%"))
    return lines


def _line(what: str, value: str, ok: bool, target: str) -> str:
    return f"{what}: {value} (target {target}) {'PASS' if ok else 'MISS'}"

"""The `/v1/messages` cases of bench.load, each measured beside the same call through
/v1/chat/completions on the same gateway, alternating (so the difference is what the
Messages dialect adds: decode, translation, and the answer or stream encoded back):

    messages          POST /v1/messages vs POST /v1/chat/completions
    messages-stream   the same, streamed (ends at `message_stop`) vs a chat stream ([DONE])

Both sides go to `openai`, pointed at the benchmark mock, so the Messages request is
translated to Chat Completions (the path every non-Anthropic target takes). Each asks for
the same 256 output tokens, the chat one as `max_completion_tokens`.
"""

from __future__ import annotations

import orjson

from bench.client import Run, chat_request, load
from bench.responses_load import ROUNDS, _charged, _line, _merged

PROVIDER = "openai"
MODES = ("messages", "messages-stream")
STREAM_END = b"message_stop"
MAX_TOKENS = 256


def messages_request(port: int, *, stream: bool) -> bytes:
    """The raw bytes of one Messages request, as the anthropic SDK would send it."""
    body = orjson.dumps({"model": "bench-model", "max_tokens": MAX_TOKENS, "stream": stream,
                         "messages": [{"role": "user",
                                       "content": "Say hello to the benchmark."}]})
    head = (f"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            "content-type: application/json\r\naccept: application/json\r\n"
            "x-api-key: sk-bench\r\nanthropic-version: 2023-06-01\r\n"
            f"x-portkey-provider: {PROVIDER}\r\ncontent-length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def measure(port: int, pid: int, mode: str, concurrency: int, duration: float,
                  warmup: float) -> tuple[Run, Run]:
    """(chat baseline, Messages case) for `mode` at `concurrency`, each the sum of ROUNDS
    alternating runs; `pid` is the gateway's, whose CPU time each run is charged."""
    stream = mode == "messages-stream"
    baseline = chat_request(port, stream=stream, provider=PROVIDER,
                            extra={"max_completion_tokens": MAX_TOKENS})
    case = messages_request(port, stream=stream)
    runs: tuple[list[Run], list[Run]] = ([], [])
    for _ in range(ROUNDS):
        for data, end, kept in ((baseline, b"[DONE]", runs[0]), (case, STREAM_END, runs[1])):
            kept.append(await _charged(pid, lambda d=data, e=end: load(
                port, d, concurrency, duration / ROUNDS, warmup / ROUNDS, stream=stream,
                end=e)))
    return _merged(runs[0]), _merged(runs[1])


def verdict(row: dict[str, object], baseline: dict[str, float],
            through: dict[str, float]) -> list[str]:
    """Issue 24's targets for one row: added p50 and first byte at c=1, req/s at c=64."""
    mode, concurrency = row["mode"], row["concurrency"]
    lines = [f"{mode} c={concurrency}: gateway CPU {through['cpu_us_per_request']:.0f} us/req "
             f"vs {baseline['cpu_us_per_request']:.0f} for /v1/chat/completions"]
    if concurrency == 1:
        added = through["p50_ms"] - baseline["p50_ms"]
        lines.append(_line(f"{mode}: added p50 at c=1", f"{added:.3f} ms", added < 0.2,
                           "< 0.2 ms"))
        if mode == "messages-stream":
            first = through["ttfb_p50_ms"] - baseline["ttfb_p50_ms"]
            lines.append(_line(f"{mode}: added first byte at c=1", f"{first:.3f} ms",
                               first < 0.3, "< 0.3 ms"))
    if concurrency == 64:
        ratio = through["rps"] / baseline["rps"] if baseline["rps"] else 0.0
        lines.append(_line(f"{mode}: req/s at c=64", f"{ratio:.0%} of chat", ratio >= 0.85,
                           ">= 85%"))
    return lines

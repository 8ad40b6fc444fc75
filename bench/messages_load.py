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

from bench.client import chat_request, load
from bench.responses_load import ROUNDS, Paired, alternate, dialect_verdict

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
                  warmup: float, rounds: int = ROUNDS) -> Paired:
    """(chat baseline, Messages case, ratios) for `mode` at `concurrency` over `rounds`
    alternating rounds; `pid` is the gateway's, whose CPU time each run is charged."""
    stream = mode == "messages-stream"
    baseline = chat_request(port, stream=stream, provider=PROVIDER,
                            extra={"max_completion_tokens": MAX_TOKENS})
    case = messages_request(port, stream=stream)
    return await alternate(pid, rounds, lambda data, end: load(
        port, data, concurrency, duration / rounds, warmup / rounds, stream=stream, end=end),
        (baseline, b"[DONE]"), (case, STREAM_END))


def verdict(row: dict[str, object], baseline: dict[str, float],
            through: dict[str, float]) -> list[str]:
    """Issue 24's targets for one row: added p50 and first byte at c=1, req/s at c=64."""
    return dialect_verdict(row, baseline, through, stream_mode="messages-stream",
                           baseline_name="/v1/chat/completions")

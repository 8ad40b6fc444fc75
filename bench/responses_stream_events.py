"""The Responses stream translation's own cost per stream, in process (no HTTP): issue 24.

A chat stream as bench/mock_upstream.py sends it (a role chunk, 8 content chunks, the stop
chunk, the usage chunk), or a tool-call stream (one call, its arguments in 8 pieces), goes
through a dialect's stream encoder to the SSE bytes the relay sends: the chat encoder (the
baseline the load test compares with), the Messages one, and the Responses one (a new
encoder per stream, as a request makes). The chunks are parsed outside the timed part (that
cost is the same for every dialect). p50 µs per stream of many; the cases alternate in
rounds, so a busy machine's drift hits them all.

    .venv/bin/python -m bench.responses_stream_events [--streams 20000] [--profile]
        [--against PATH]

`--against` also times another version of gateway/pipeline/dialects/responses_stream.py
(a saved copy of the old one: the "before" side), after checking that both emit the same
events, field for field and in the same order, with the ids made deterministic.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import statistics
import time
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import orjson

from gateway.pipeline.dialects import responses_stream
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.dialects.messages_stream import MessagesStreamEncoder
from gateway.pipeline.dialects.responses_output import ResponseBuilder
from gateway.pipeline.dialects.responses_request import decode_request, new_id

ROUNDS = 10
REQUEST = {"model": "bench-model", "input": "Say hello to the benchmark.", "stream": True,
           "store": True}
TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}
ARGUMENTS = ['{"', 'city', '":"', 'Par', 'is, ', 'Fra', 'nce"', '}']


def _chunk(delta: dict[str, Any] | None, finish: str | None = None,
           usage: dict[str, int] | None = None) -> bytes:
    """One upstream chunk's JSON, as the mock sends it."""
    body: dict[str, Any] = {
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
        "model": "bench-model", "system_fingerprint": "fp_bench",
        "choices": [] if delta is None else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def text_stream(pieces: int = 8) -> list[bytes]:
    usage = {"prompt_tokens": 12, "completion_tokens": pieces, "total_tokens": 12 + pieces}
    return [_chunk({"role": "assistant", "content": ""}),
            *[_chunk({"content": " token"})] * pieces, _chunk({}, "stop"),
            _chunk(None, usage=usage)]


def tool_stream() -> list[bytes]:
    usage = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
    first = {"index": 0, "id": "call_bench", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}
    return [_chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
            *[_chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
              for piece in ARGUMENTS],
            _chunk({}, "tool_calls"), _chunk(None, usage=usage)]


Encoder = Any  # a StreamEncoder: chunk(), end()
Factory = Callable[[], Encoder]


def responses_factory(module: ModuleType, tools: bool) -> Factory:
    request = decode_request(REQUEST | {"tools": [TOOL]} if tools else REQUEST)
    encoder_class = module.ResponsesStreamEncoder

    def make() -> Encoder:
        return encoder_class(ResponseBuilder(request, "resp_bench"), lambda response: None)
    return make


def chat_factory() -> Encoder:
    return CHAT.stream_encoder(None)  # type: ignore[arg-type]


def messages_factory() -> Encoder:
    request = SimpleNamespace(request_id="0b1c2d3e-0000-4000-8000-000000000000",
                              body={"model": "bench-model"})
    return MessagesStreamEncoder(request)  # type: ignore[arg-type]


def run_one(make: Factory, raw: list[bytes]) -> tuple[int, bytes]:
    """One stream through a new encoder: (ns spent encoding, the bytes sent)."""
    chunks = [orjson.loads(data) for data in raw]
    start = time.perf_counter_ns()
    encoder = make()
    out = [encoder.chunk(chunk) for chunk in chunks]
    out.append(encoder.end())
    spent = time.perf_counter_ns() - start
    return spent, b"".join(out)


def cases(against: ModuleType | None) -> dict[str, tuple[Factory, list[bytes]]]:
    found: dict[str, tuple[Factory, list[bytes]]] = {
        "chat (baseline)": (chat_factory, text_stream()),
        "messages": (messages_factory, text_stream()),
        "responses text": (responses_factory(responses_stream, False), text_stream()),
        "responses tools": (responses_factory(responses_stream, True), tool_stream()),
    }
    if against is not None:
        found["before: responses text"] = (responses_factory(against, False), text_stream())
        found["before: responses tools"] = (responses_factory(against, True), tool_stream())
    return found


def check_same(modules: list[ModuleType]) -> None:
    """Both versions send the same bytes (so the same events, fields and order) when their
    ids are the same."""
    for tools, raw in ((False, text_stream()), (True, tool_stream())):
        sent = []
        for module in modules:
            module.new_id = _counted_ids()  # type: ignore[attr-defined]
            sent.append(run_one(responses_factory(module, tools), raw)[1])
        assert sent[0] == sent[1], f"the versions differ (tools={tools})"
        print(f"same bytes ({'tools' if tools else 'text'}): {sent[0].count(b'event: ')} "
              "events")
    for module in modules:
        module.new_id = new_id  # type: ignore[attr-defined]


def _counted_ids() -> Callable[[str], str]:
    """new_id, made deterministic: 0, 1, 2 ... in 48 hex digits."""
    counter = iter(range(1 << 20))
    return lambda prefix: f"{prefix}_{next(counter):048x}"


def load_module(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("responses_stream_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(found: dict[str, tuple[Factory, list[bytes]]], streams: int) -> None:
    times: dict[str, list[int]] = {name: [] for name in found}
    per_round = max(streams // ROUNDS, 1)
    for make, raw in found.values():  # warm up
        for _ in range(200):
            run_one(make, raw)
    for _ in range(ROUNDS):
        for name, (make, raw) in found.items():
            times[name] += [run_one(make, raw)[0] for _ in range(per_round)]
    base = statistics.median(times["chat (baseline)"]) / 1000
    print(f"{'case':26} {'p50 µs':>8} {'p90 µs':>8} {'over chat':>10} {'bytes':>6}")
    for name, (make, raw) in found.items():
        spent = sorted(times[name])
        p50 = statistics.median(spent) / 1000
        p90 = spent[len(spent) * 9 // 10] / 1000
        size = len(run_one(make, raw)[1])
        print(f"{name:26} {p50:8.1f} {p90:8.1f} {p50 - base:+10.1f} {size:6}")


def profile(found: dict[str, tuple[Factory, list[bytes]]], streams: int) -> None:
    for name in ("responses text", "responses tools"):
        make, raw = found[name]
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(streams):
            run_one(make, raw)
        profiler.disable()
        print(f"--- {name}: {streams} streams")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(14)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=20000, help="streams per case")
    parser.add_argument("--against", help="another responses_stream.py to time beside")
    parser.add_argument("--profile", action="store_true", help="cProfile the Responses cases")
    args = parser.parse_args()
    against = load_module(args.against) if args.against else None
    if against is not None:
        check_same([responses_stream, against])
    found = cases(against)
    if args.profile:
        profile(found, args.streams)
    else:
        measure(found, args.streams)


if __name__ == "__main__":
    main()

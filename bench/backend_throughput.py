"""Throughput and time to first token of the bundled vLLM backend, direct and through the gateway.

Streams chat completions at each concurrency level (ignore_eos, so every request generates
exactly --max-tokens tokens), first straight to vLLM, then through the gateway
(`x-portkey-provider: vllm`, the gateway adds the backend key), and prints tokens per second
and TTFT percentiles. The gateway must keep at least --min-ratio (98%) of direct throughput.

GPU host (any model the backend serves):
    python bench/backend_throughput.py --backend-url http://127.0.0.1:8000 --api-key $KEY \
        --gateway-url http://127.0.0.1:8787
CPU, with the tiny test model:
    python -m backend.tiny_model /tmp/tiny
    MODEL_NAME=/tmp/tiny DTYPE=float32 BACKEND_API_KEY=k VLLM_CPU_KVCACHE_SPACE=1 \
        MAX_NUM_SEQS=64 python -m backend &
    python bench/backend_throughput.py --backend-url http://127.0.0.1:8000 --api-key k
Without --gateway-url the script starts `python -m gateway serve` itself, pointed at the backend.

On a CPU host the backend computes on the same cores as the gateway and this client, so the
gateway's CPU time comes straight out of token generation; on a GPU host it does not. To
measure the gateway rather than that contention, give the backend its own cores and the
client and gateway the others (the ratio is then what a GPU deployment sees):
    taskset -c 1 python -m backend &          # the backend and its engine on core 1
    python bench/backend_throughput.py --backend-url ... --cpus 0   # client + gateway on 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # ends in /v1
    headers: dict[str, str]


@dataclass(frozen=True)
class Sample:
    ttft_s: float
    tokens: int


@dataclass(frozen=True)
class LevelResult:
    target: str
    concurrency: int
    requests: int
    errors: int
    wall_s: float
    tokens: int
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float


async def one_stream(client: httpx.AsyncClient, target: Target, body: dict) -> Sample:
    started = time.perf_counter()
    ttft: float | None = None
    tokens = 0
    async with client.stream("POST", f"{target.url}/chat/completions", json=body,
                             headers=target.headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{target.name}: {response.status_code} "
                               f"{(await response.aread())[:200]!r}")
        async for line in sse_lines(response):
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if ttft is None and any(c.get("delta", {}).get("content")
                                    for c in chunk.get("choices", [])):
                ttft = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
    return Sample(ttft if ttft is not None else time.perf_counter() - started, tokens)


async def sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    """Lines split at LF only (aiter_lines would also split at U+2028 inside JSON strings)."""
    buffer = ""
    async for text in response.aiter_text():
        *lines, buffer = (buffer + text).split("\n")
        for line in lines:
            yield line.rstrip("\r")


async def run_level(target: Target, body: dict, concurrency: int, requests: int) -> LevelResult:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await one_stream(client, target, body)  # warm the connection and the prefix cache
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)
        samples: list[Sample] = []
        errors = 0

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                queue.get_nowait()
                try:
                    samples.append(await one_stream(client, target, body))
                except (httpx.HTTPError, RuntimeError) as exc:
                    errors += 1
                    print(f"  error: {exc}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ttfts = sorted(s.ttft_s * 1000 for s in samples) or [0.0]
    tokens = sum(s.tokens for s in samples)
    return LevelResult(target.name, concurrency, requests, errors, round(wall, 3), tokens,
                       round(tokens / wall, 1), round(statistics.median(ttfts), 1),
                       round(ttfts[min(len(ttfts) - 1, int(len(ttfts) * 0.95))], 1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SpawnedGateway:
    """`python -m gateway serve` on a free port, pointed at the backend; keeps its CPU time."""

    def __init__(self, backend_url: str, api_key: str, cpus: set[int] | None = None) -> None:
        self.backend_url, self.api_key, self.cpus = backend_url, api_key, cpus
        self.url = f"http://127.0.0.1:{free_port()}"
        self.cpu_s: float | None = None

    @contextmanager
    def running(self) -> Iterator[str]:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "GATEWAY_VLLM_URL": f"{self.backend_url}/v1",
                   "GATEWAY_VLLM_API_KEY": self.api_key, "GATEWAY_LOG_LEVEL": "warning",
                   "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.sqlite3",
                   "GATEWAY_SPOOL_DIR": f"{tmp}/spool"}
            port = self.url.rsplit(":", 1)[1]
            process = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port",
                                        port], env=env)
            if self.cpus:
                os.sched_setaffinity(process.pid, self.cpus)
            try:
                self._wait_healthy()
                started = _cpu_seconds(process.pid)  # leave out imports and startup
                yield self.url
                ended = _cpu_seconds(process.pid)
                if started is not None and ended is not None:
                    self.cpu_s = ended - started
            finally:
                process.terminate()
                process.wait(30)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the gateway did not start")


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_model(backend_url: str, api_key: str) -> str:
    response = httpx.get(f"{backend_url}/v1/models",
                         headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    response.raise_for_status()
    return str(response.json()["data"][0]["id"])


def report(results: list[LevelResult], min_ratio: float) -> bool:
    print(f"{'conc':>5} {'direct tok/s':>13} {'gateway tok/s':>14} {'ratio':>7} "
          f"{'direct TTFT p50/p95 ms':>23} {'gateway TTFT p50/p95 ms':>24}")
    by_key = {(r.target, r.concurrency): r for r in results}
    ok = True
    for level in sorted({r.concurrency for r in results}):
        direct, gateway = by_key[("direct", level)], by_key[("gateway", level)]
        ratio = gateway.tokens_per_s / direct.tokens_per_s if direct.tokens_per_s else 0.0
        ok = ok and ratio >= min_ratio and not (direct.errors or gateway.errors)
        print(f"{level:>5} {direct.tokens_per_s:>13.1f} {gateway.tokens_per_s:>14.1f} "
              f"{ratio:>7.1%} {direct.ttft_p50_ms:>11.1f}/{direct.ttft_p95_ms:<11.1f} "
              f"{gateway.ttft_p50_ms:>12.1f}/{gateway.ttft_p95_ms:<11.1f}")
    print(f"gateway keeps >= {min_ratio:.0%} of direct throughput at every level: "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


async def measure(args: argparse.Namespace, gateway_url: str, model: str) -> list[LevelResult]:
    body = {"model": model, "messages": [{"role": "user", "content": args.prompt}],
            "max_tokens": args.max_tokens, "ignore_eos": True, "temperature": 1.0,
            "stream": True, "stream_options": {"include_usage": True}}
    targets = [
        Target("direct", f"{args.backend_url}/v1", {"Authorization": f"Bearer {args.api_key}"}),
        Target("gateway", f"{gateway_url}/v1", {"x-portkey-provider": "vllm"}),
    ]
    results = []
    for level in args.concurrency:
        requests = args.requests or max(4 * level, 16)
        rounds: dict[str, list[LevelResult]] = {t.name: [] for t in targets}
        # Alternate the order each round, so drift on a shared machine hits both sides alike.
        for index in range(args.rounds):
            for target in (targets if index % 2 == 0 else targets[::-1]):
                result = await run_level(target, body, level, requests)
                print(f"  {target.name:>7} c={level:<3} {result.tokens_per_s:>9.1f} tok/s "
                      f"TTFT p50 {result.ttft_p50_ms} ms ({result.requests} requests, "
                      f"{result.errors} errors)", file=sys.stderr)
                rounds[target.name].append(result)
        results += [_median_round(runs) for runs in rounds.values()]
    return results


def _median_round(runs: list[LevelResult]) -> LevelResult:
    """The round with the median throughput, errors summed over all rounds."""
    middle = sorted(runs, key=lambda r: r.tokens_per_s)[len(runs) // 2]
    return replace(middle, errors=sum(r.errors for r in runs))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend-url", required=True, help="vLLM's root, e.g. http://h:8000")
    parser.add_argument("--api-key", default=os.environ.get("BACKEND_API_KEY", ""),
                        help="the backend's key (default: $BACKEND_API_KEY)")
    parser.add_argument("--gateway-url", help="gateway root; default: start one here")
    parser.add_argument("--model", help="default: the backend's first model")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 4, 16, 64])
    parser.add_argument("--requests", type=int, default=0,
                        help="requests per level, target and round (default: 4 x concurrency, "
                             ">= 16)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per level; the median round counts")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompt", default="Write a short story about a gateway.")
    parser.add_argument("--min-ratio", type=float, default=0.98)
    parser.add_argument("--cpus", type=lambda s: {int(x) for x in s.split(",")},
                        help="run this client and the gateway it starts on these CPUs only "
                             "(e.g. 0, with the backend under `taskset -c 1`)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.backend_url = args.backend_url.rstrip("/").removesuffix("/v1")
    if args.cpus:
        os.sched_setaffinity(0, args.cpus)
    model = args.model or first_model(args.backend_url, args.api_key)
    print(f"model {model!r}; concurrency {args.concurrency}; {args.max_tokens} tokens/request",
          file=sys.stderr)
    spawned = None
    if args.gateway_url:
        results = asyncio.run(measure(args, args.gateway_url.rstrip("/"), model))
    else:
        spawned = SpawnedGateway(args.backend_url, args.api_key, args.cpus)
        with spawned.running() as gateway_url:
            results = asyncio.run(measure(args, gateway_url, model))
    ok = report(results, args.min_ratio)
    if spawned and spawned.cpu_s is not None:
        # Every round of every level (warm-up requests left out: a slight overestimate).
        tokens = sum(r.tokens for r in results if r.target == "gateway") * args.rounds
        print(f"gateway CPU: {spawned.cpu_s:.1f} s in all, about "
              f"{1e6 * spawned.cpu_s / max(tokens, 1):.0f} us per streamed token")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Slow streams: many concurrent streams whose upstream takes seconds, and the gateway's memory.

Starts the mock upstream and `python -m gateway serve --workers 1` as separate processes, opens
`--streams` client connections at once, each asking for a stream of `--chunks` chunks with
`--delay-ms` between them (so each lasts about chunks x delay), and samples the gateway
process's resident memory (VmRSS from /proc) until every stream has ended.

    python -m bench.slow_streams [--streams 200] [--chunks 20] [--delay-ms 250]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time

from bench.client import Connection, Result, chat_request
from bench.harness import cpu_seconds, gateway, mock_upstream, rss_bytes, run_fast

RSS_TARGET_MB = 100.0
MB = 1024 * 1024


async def _sample(pid: int, peak: list[int], stop: asyncio.Event, every: float) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_bytes(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def _one(port: int, data: bytes, opened: asyncio.Barrier) -> Result | BaseException:
    try:
        conn = await Connection.open("127.0.0.1", port)
    except OSError as exc:
        await opened.wait()
        return exc
    await opened.wait()  # every connection open before any request: all streams overlap
    try:
        return await conn.request(data)
    except OSError as exc:
        return exc
    finally:
        conn.close()


async def _bench(args: argparse.Namespace) -> bool:
    with mock_upstream() as upstream, gateway(upstream) as (port, proc):
        # Warm up (imports, pools) so the baseline is the gateway at rest, ready to serve.
        warm = await Connection.open("127.0.0.1", port)
        for stream in (False, True):
            await warm.request(chat_request(port, stream=stream))
        warm.close()
        await asyncio.sleep(0.5)
        baseline = rss_bytes(proc.pid)

        data = chat_request(port, stream=True, extra={
            "mock_chunks": args.chunks, "mock_delay_ms": args.delay_ms})
        peak, stop = [baseline], asyncio.Event()
        sampler = asyncio.create_task(_sample(proc.pid, peak, stop, 0.02))
        cpu, started = cpu_seconds(proc.pid), time.perf_counter()
        opened = asyncio.Barrier(args.streams)
        results = await asyncio.gather(*(_one(port, data, opened) for _ in range(args.streams)))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(proc.pid) - cpu
        stop.set()
        await sampler
        after = rss_bytes(proc.pid)

    ok = [r for r in results if isinstance(r, Result) and r.status == 200
          and b"[DONE]" in r.tail]
    failed = len(results) - len(ok)
    expected = args.chunks * args.delay_ms / 1000
    durations = sorted(r.latency for r in ok)
    print(f"streams: {args.streams} concurrent, {args.chunks} chunks each, "
          f"{args.delay_ms:g} ms apart (about {expected:.1f} s per stream)")
    print(f"completed: {len(ok)} ok, {failed} failed, in {elapsed:.1f} s wall; "
          f"stream duration min/max {durations[0]:.2f}/{durations[-1]:.2f} s" if durations
          else f"completed: none ok, {failed} failed")
    print(f"gateway CPU over the run: {cpu:.2f} s")
    print(f"gateway RSS: baseline {baseline / MB:.1f} MB, peak {peak[0] / MB:.1f} MB "
          f"(+{(peak[0] - baseline) / MB:.1f} MB, {(peak[0] - baseline) / 1024 / args.streams:.1f}"
          f" KB per stream), after {after / MB:.1f} MB")
    held = failed == 0 and peak[0] / MB < RSS_TARGET_MB
    print(f"peak RSS {peak[0] / MB:.1f} MB with every stream completed "
          f"(target < {RSS_TARGET_MB:g} MB) {'PASS' if held else 'MISS'}")
    return held


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_streams",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--delay-ms", type=float, default=250.0, help="pause before each chunk")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return 0 if run_fast(_bench(parse_args(argv))) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Processes for a benchmark: the mock upstream and the gateway, started as users start them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent


def add_gateway_env(parser: argparse.ArgumentParser, example: str = "") -> None:
    """`--gateway-env NAME=VALUE` (repeatable): extra environment for the gateway(s)."""
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        type=lambda s: tuple(s.split("=", 1)),
                        help=f"extra environment for the gateway{example} (repeatable)")


def add_pinning(parser: argparse.ArgumentParser) -> None:
    """`--pin`: the gateway(s) alone on the last core, this process (the client) and what it
    starts first (the mock) on the others (`pinned(args)`), as bench.usage_overhead pins."""
    parser.add_argument("--pin", action="store_true",
                        help="the gateway alone on the last core, the client and the mock on "
                             "the others (taskset): steadier figures on a shared machine")


def pinned(args: argparse.Namespace) -> tuple[str, ...]:
    """With `--pin`: moves this process off the last core now (call it before starting the
    mock) and returns the `under` that starts a gateway on that core; otherwise ()."""
    if not getattr(args, "pin", False):
        return ()
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("--pin needs at least two cores")
    os.sched_setaffinity(0, set(cores[:-1]))
    return ("taskset", "-c", str(cores[-1]))


def trees_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A parser for a benchmark of checkouts side by side: `--tree` (repeatable), `--json`."""
    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    parser.add_argument("--tree", action="append", help="a checkout to run (repeatable)")
    parser.add_argument("--json", help="also write the figures to this file")
    return parser


def write_json(path: str | None, figures: Any) -> None:
    """`figures` as indented JSON into `path` (`--json`), when one was given."""
    if path:
        Path(path).write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))


def run_fast(main: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str,
                  timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def mock_upstream(chunks: int = 8, delay_ms: float = 0.0) -> Iterator[str]:
    """Start bench/mock_upstream.py in its own process; yields its base URL (…/v1)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.mock_upstream", "--port", str(port),
         "--chunks", str(chunks), "--delay-ms", str(delay_ms)],
        cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, "the mock upstream")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)


@contextlib.contextmanager
def gateway(upstream_url: str, module: str = "gateway", *, under: Sequence[str] = (),
            start_timeout: float = 30.0,
            **env: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`python -m gateway serve` with one worker, `openai` pointed at the mock (`module`
    names another entry point that takes the same arguments, such as bench.usage_switch;
    `under`, a command it runs under, such as valgrind's).

    Yields (port, process). A temporary directory holds its SQLite file and spool.
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        database = f"sqlite+aiosqlite:///{tmp}/gateway.sqlite3"
        environment = {
            **os.environ,
            "GATEWAY_PROVIDER_BASE_URLS": orjson.dumps({"openai": upstream_url}).decode(),
            "DATABASE_URL": database, "GATEWAY_DATABASE_URL": database,
            "GATEWAY_SPOOL_DIR": f"{tmp}/spool", "GATEWAY_LOG_LEVEL": "warning",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            **env,
        }
        proc = subprocess.Popen(
            [*under, sys.executable, "-m", module, "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"], cwd=tmp, env=environment)
        try:
            wait_for_port(port, proc, "the gateway", start_timeout)
            yield port, proc
        finally:
            _stop(proc)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces; the fields after its closing parenthesis do not.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants, from /proc (Linux)."""
    total = 0
    for each in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError), open(f"/proc/{each}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_descendants(int(child))]
    return found

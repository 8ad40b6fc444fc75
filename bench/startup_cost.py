"""What a serving process holds before its first request: import time and resident memory.

For each gateway tree (`--tree PATH`, repeatable; default this checkout), in alternating order
round after round, a fresh interpreter imports `gateway.app` and runs the app's lifespan on a
migrated SQLite database (as `tests/gateway/test_lean_process.py` does), optionally with Redis
configured (`--redis-url`), and reports the seconds to import and to start (wall clock and
the process's CPU time, which a busy machine moves less), its VmRSS once started and which
optional heavy libraries were loaded. Prints per tree the median and the spread (lowest to
highest) over the rounds, and the median ratio to the first tree. Compare trees in one run:
import times move with the machine's load.

    python -m bench.startup_cost [--rounds 15] [--redis-url redis://127.0.0.1:6379/0]
        [--tree PATH] [--tree PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import orjson

from bench.harness import ROOT

HEAVY = ("alembic", "redis", "jinja2", "cryptography", "asyncpg", "opentelemetry", "rich",
         "pygments", "click")

_PROBE = f"""
import asyncio, json, sys, time
started, started_cpu = time.perf_counter(), time.process_time()
from gateway.app import create_app
imported, imported_cpu = time.perf_counter(), time.process_time()

async def main():
    app = create_app()
    async with app.router.lifespan_context(app):
        ready, ready_cpu = time.perf_counter(), time.process_time()
        with open("/proc/self/status") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))
        metrics = sys.modules.get("opentelemetry.sdk.metrics") is not None
        print(json.dumps({{"import_s": imported - started, "start_s": ready - imported,
                          "import_cpu_s": imported_cpu - started_cpu,
                          "start_cpu_s": ready_cpu - imported_cpu,
                          "rss_kib": rss, "loaded": loaded, "otel_sdk_metrics": metrics}}))

asyncio.run(main())
"""


def _environment(tree: Path, database: str, redis_url: str | None, tmp: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database, "GATEWAY_DATABASE_URL": database,
           "PYTHONPATH": str(tree), "GATEWAY_SPOOL_DIR": f"{tmp}/spool"}
    for name in ("REDIS_URL", "GATEWAY_REDIS_URL", "GATEWAY_MASTER_KEY", "GATEWAY_OTLP_ENDPOINT"):
        env.pop(name, None)
    if redis_url:
        env["GATEWAY_REDIS_URL"] = redis_url
        env["GATEWAY_REDIS_PREFIX"] = f"bench-startup-{uuid.uuid4().hex[:8]}:"
    return env


def _probe(env: dict[str, str], cwd: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    result: dict[str, object] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup_cost",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", type=Path, default=[],
                        help="a checkout whose gateway is measured (repeatable)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--redis-url", help="configure Redis (the link is made at start)")
    args = parser.parse_args(argv)
    trees = [tree.resolve() for tree in args.tree] or [ROOT]
    results: dict[Path, list[dict[str, object]]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        envs = {}
        for index, tree in enumerate(trees):
            database = f"sqlite+aiosqlite:///{tmp}/gateway-{index}.sqlite3"
            envs[tree] = _environment(tree, database, args.redis_url, tmp)
            subprocess.run([sys.executable, "-m", "gateway", "migrate"], env=envs[tree],
                           cwd=tmp, check=True, capture_output=True, timeout=120)
        for round_ in range(args.rounds):
            order = trees if round_ % 2 == 0 else trees[::-1]
            for tree in order:
                results[tree].append(_probe(envs[tree], tmp))
    base: dict[str, float] = {}
    print(f"{args.rounds} rounds, alternating; Redis {'configured' if args.redis_url else 'off'}"
          "; median [lowest-highest]")
    for tree in trees:
        runs = results[tree]
        line = [str(tree)]
        for key, scale, unit in (("import_s", 1000, "ms"), ("import_cpu_s", 1000, "ms"),
                                 ("start_s", 1000, "ms"), ("start_cpu_s", 1000, "ms"),
                                 ("rss_kib", 1 / 1024, "MiB")):
            values = [float(run[key]) * scale for run in runs]  # type: ignore[arg-type]
            median = statistics.median(values)
            base.setdefault(key, median)
            name = key.removesuffix("_s").removesuffix("_kib").replace("_", " ")
            line.append(f"{name} {median:.1f} {unit} [{min(values):.1f}-"
                        f"{max(values):.1f}] ({median / base[key]:.3f}x)")
        line.append(f"loaded {runs[-1]['loaded']}, otel sdk metrics "
                    f"{runs[-1]['otel_sdk_metrics']}")
        print("\n  ".join(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())

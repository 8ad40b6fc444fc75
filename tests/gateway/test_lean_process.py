"""A serving process loads only what its settings use: with the embedded defaults (SQLite, no
Redis, no master key, no OTLP collector, no console visit) none of the optional heavy
libraries is imported, which keeps the gateway under its memory target (bench.slow_streams)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("alembic", "mako", "redis", "jinja2", "cryptography", "asyncpg", "opentelemetry")
# httpx imports its command-line tool (click, rich, pygments) whenever all three are installed.
# The gateway's own dependencies bring neither rich nor pygments (checked below), so a gateway
# installed as the Dockerfile installs it never loads them; where something else installs them
# (the `backend-cpu` extra's vLLM, in development) each process holds about 5 MiB more
# (bench/README.md, "Contained experiments").
HTTPX_CLI = ("rich", "pygments")

_SERVE_AND_LIST = f"""
import asyncio, gc, sys
from gateway.app import create_app

async def main():
    app = create_app()
    async with app.router.lifespan_context(app):
        # Start-up's objects are exempt from collections once serving (gateway.server.heap).
        assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()

asyncio.run(main())
print(sorted({{name.split(".")[0] for name in sys.modules}} & set({OPTIONAL!r})))
"""


def _run(args: list[str], database: str) -> str:
    env = {**os.environ, "DATABASE_URL": database, "GATEWAY_DATABASE_URL": database,
           "PYTHONPATH": str(ROOT)}
    for name in ("REDIS_URL", "GATEWAY_REDIS_URL", "GATEWAY_MASTER_KEY", "GATEWAY_OTLP_ENDPOINT"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_current_schema_serves_without_optional_libraries(tmp_path: Path):
    database = f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3"
    _run(["-m", "gateway", "migrate"], database)
    assert _run(["-c", _SERVE_AND_LIST], database) == "[]"


def test_a_fresh_database_is_migrated_in_process_when_not_served_by_the_cli(tmp_path: Path):
    # create_app on its own (tests, embedding) still migrates SQLite itself, loading Alembic.
    database = f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3"
    assert "alembic" in _run(["-c", _SERVE_AND_LIST], database)


def _dependencies(distribution: str) -> set[str]:
    """Every distribution `distribution` requires, transitively, as installed here."""
    found: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = [(distribution, frozenset())]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:  # not for this platform or Python
            continue
        for line in requires:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra})
                                     for extra in extras | {""}):
                key = canonicalize_name(requirement.name)
                found.add(key)
                todo.append((key, frozenset(requirement.extras)))
    return found


def test_the_gateway_s_own_dependencies_bring_no_httpx_command_line_tool():
    dependencies = _dependencies("ai-gateway")
    assert {"httpx", "h11"} <= dependencies  # h11 through httpx and httpcore: walked through
    assert not dependencies & set(HTTPX_CLI)

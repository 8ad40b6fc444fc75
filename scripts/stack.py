"""Start the docker-compose topology without Docker, on this machine.

    scripts/stack            migrate Postgres, start Redis (unless one answers), a mock upstream
                             and `python -m gateway serve --workers 2`; print the URLs; return
    scripts/stack --stop     stop what the last start left running (by the pids it wrote)

Environment: DATABASE_URL (postgresql+asyncpg://postgres@127.0.0.1:5432/gateway), REDIS_URL
(redis://127.0.0.1:6379/0), GATEWAY_PORT (8787), STACK_MOCK_PORT (8790), STACK_DIR (.stack:
pids, logs, spool), STACK_WORKERS (2). Every other GATEWAY_* variable reaches the gateway.
The mock upstream answers for openai, anyscale, together-ai, groq and vllm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

ROOT = Path(__file__).resolve().parents[1]
MOCKED_PROVIDERS = ("openai", "anyscale", "together-ai", "groq", "vllm")


class StackError(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stop", action="store_true", help="stop the running stack")
    parser.add_argument("--no-migrate", action="store_true",
                        help="skip `python -m gateway migrate` (a database already migrated)")
    args = parser.parse_args()
    env = os.environ
    stack_dir = Path(env.get("STACK_DIR", ROOT / ".stack")).resolve()
    try:
        if args.stop:
            stop(stack_dir)
        else:
            start(stack_dir, env, migrate=not args.no_migrate)
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


def start(stack_dir: Path, env: os._Environ[str], migrate: bool) -> None:
    stack_dir.mkdir(parents=True, exist_ok=True)
    if running(stack_dir):
        raise StackError(f"already running (pids in {stack_dir}); `scripts/stack --stop` first")
    database_url = env.get("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/gateway")
    redis_url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    port = int(env.get("GATEWAY_PORT", "8787"))
    mock_port = int(env.get("STACK_MOCK_PORT", "8790"))
    workers = env.get("STACK_WORKERS", "2")
    mock_url = f"http://127.0.0.1:{mock_port}"
    gateway_env = {
        **env, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port),
        "GATEWAY_SPOOL_DIR": str(stack_dir / "spool"), "GATEWAY_VLLM_URL": f"{mock_url}/v1",
        "GATEWAY_PROVIDER_BASE_URLS": json.dumps(
            {slug: f"{mock_url}/v1" for slug in MOCKED_PROVIDERS}),
    }
    ensure_postgres(database_url)
    ensure_redis(redis_url, stack_dir)
    if migrate:
        run_migrations(gateway_env, stack_dir)
    launch("mock", [sys.executable, "-m", "tests.support.run_mock", "--port", str(mock_port)],
           dict(env), stack_dir)
    wait_http(f"{mock_url}/v1/models", "mock upstream", stack_dir / "mock.log")
    launch("gateway", [sys.executable, "-m", "gateway", "serve", "--workers", workers],
           gateway_env, stack_dir)
    gateway_url = f"http://127.0.0.1:{port}"
    wait_http(f"{gateway_url}/healthz", "gateway", stack_dir / "gateway.log")
    print(f"gateway   {gateway_url}/v1   ({workers} workers)")
    print(f"metrics   {gateway_url}/metrics")
    print(f"mock      {mock_url}/v1   (providers: {', '.join(MOCKED_PROVIDERS)})")
    print(f"postgres  {redact(database_url)}")
    print(f"redis     {redact(redis_url)}")
    print(f"logs      {stack_dir}/*.log   stop: scripts/stack --stop")


def ensure_postgres(url: str) -> None:
    """Reachable, and the database exists (created when missing)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgresql"):
        return  # SQLite: nothing to start
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    if not reachable(host, port):
        raise StackError(f"Postgres does not answer on {host}:{port}; start it first")
    asyncio.run(_create_database(parts))


async def _create_database(parts: SplitResult) -> None:
    import asyncpg  # the gateway's own driver; imported here, only when Postgres is used

    name = parts.path.lstrip("/")
    admin = parts._replace(scheme="postgresql", path="/postgres").geturl()
    connection = await asyncpg.connect(admin)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def ensure_redis(url: str, stack_dir: Path) -> None:
    """Use the Redis that answers at `url`, else start a local redis-server there."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if reachable(host, port):
        return
    if host not in ("127.0.0.1", "localhost"):
        raise StackError(f"Redis does not answer on {host}:{port}")
    launch("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no"], dict(os.environ), stack_dir)
    deadline = time.monotonic() + 10
    while not reachable(host, port):
        if time.monotonic() > deadline:
            raise StackError(f"redis-server did not start; see {stack_dir}/redis.log")
        time.sleep(0.1)


def run_migrations(env: dict[str, str], stack_dir: Path) -> None:
    log = stack_dir / "migrate.log"
    with log.open("wb") as out:
        code = subprocess.call([sys.executable, "-m", "gateway", "migrate"], env=env, cwd=ROOT,
                               stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        raise StackError(f"`python -m gateway migrate` failed (exit {code}):\n"
                         f"{log.read_text(errors='replace').strip()}\n"
                         "(no `migrate` command means the key store is not in this tree; "
                         "--no-migrate skips the step)")


def launch(name: str, argv: list[str], env: dict[str, str], stack_dir: Path) -> None:
    with (stack_dir / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    (stack_dir / f"{name}.pid").write_text(str(process.pid))


def wait_http(url: str, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise StackError(f"{what} did not answer {url}; its log:\n{log.read_text(errors='replace')}")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def pids(stack_dir: Path) -> dict[str, int]:
    found = {}
    for path in sorted(stack_dir.glob("*.pid")):
        try:
            found[path.stem] = int(path.read_text().strip())
        except ValueError:
            path.unlink()
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")  # a zombie (exited, not yet reaped) is not running
    try:
        return not stat.read_text().rsplit(") ", 1)[-1].startswith("Z")
    except OSError:
        return True


def running(stack_dir: Path) -> bool:
    return any(alive(pid) for pid in pids(stack_dir).values())


def stop(stack_dir: Path, grace_s: float = 45) -> None:
    """SIGTERM each process this stack started (gateway first), then wait; SIGKILL stragglers."""
    found = pids(stack_dir)
    order = sorted(found, key=lambda name: (name != "gateway", name))
    for name in order:
        if alive(found[name]):
            os.kill(found[name], signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for name in order:
        while alive(found[name]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(found[name]):
            os.kill(found[name], signal.SIGKILL)
            print(f"stack: {name} ({found[name]}) did not stop in time; killed", file=sys.stderr)
        (stack_dir / f"{name}.pid").unlink(missing_ok=True)
    print(f"stopped: {', '.join(order) or 'nothing was running'}")


if __name__ == "__main__":
    sys.exit(main())

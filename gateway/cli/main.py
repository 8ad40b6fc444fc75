"""`python -m gateway ...`: serve the gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys

import uvicorn

from gateway.cli import keys as key_store_cli
from gateway.db import migrate
from gateway.server.http_protocol import protocol_factory
from gateway.server.workers import shared_metrics_dir
from gateway.settings import Settings
from gateway.store.setup import needs_migration


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gateway over HTTP")
    serve.add_argument("--host", help="address to listen on (GATEWAY_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (GATEWAY_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (GATEWAY_WORKERS)")
    serve.set_defaults(run=_serve)
    key_store_cli.register(commands)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request's full URL at INFO: a webhook's query or path token, a
    # provider key in a query string. The gateway logs what it sends in its own words.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    workers = args.workers or settings.workers
    # Migrate once, before any worker starts, in a child process: Alembic then never loads
    # into a serving process (about 10 MB each), whose own check finds the schema current.
    if asyncio.run(needs_migration(settings)):
        migrated = subprocess.run([sys.executable, "-m", "gateway", "migrate"],
                                  stdout=subprocess.DEVNULL, check=False)
        if migrated.returncode:
            return migrated.returncode
        logging.getLogger("gateway").info("database migrated to %s", migrate.head())
    # uvicorn raises the SIGTERM it caught again once it has shut down; after a graceful
    # stop that should mean exit status 0, not death by signal.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    with shared_metrics_dir(settings, workers):
        uvicorn.run(
            "gateway.app:create_app", factory=True,
            host=args.host or settings.host, port=args.port or settings.port,
            # httptools, with request heads bounded in size, count and time (431, 408).
            workers=workers, loop="uvloop", http=protocol_factory(settings), ws="none",
            timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]
            log_level=settings.log_level, access_log=False,
            # On SIGTERM: stop accepting, give in-flight streams this long, then shut down.
            timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())

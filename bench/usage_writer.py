"""Usage writer throughput: rows per second from the queue into a real database.

    .venv/bin/python -m bench.usage_writer [--database-url URL] [--rows 50000] [--batch 500]

It migrates the database, submits rows as one gateway process would (through `UsageWriter`
and `UsageStore`), and reports how fast they land. Target (issue 5): 10,000 rows/s into a
local Postgres. The default URL is a `bench_usage` database on the local Postgres, created if
missing; its `request_logs` table is emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gateway.db import migrate
from gateway.db.engine import open_database
from gateway.settings import Settings
from gateway.usage import codec
from gateway.usage.spool import Spool
from gateway.usage.store import UsageStore
from gateway.usage.writer import UsageWriter

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_usage"
# TRUNCATE on Postgres: deleted rows would leave earlier runs' bloat in the table and indexes.
_EMPTY = {False: "DELETE FROM request_logs", True: "TRUNCATE request_logs"}


async def empty_table(url: str) -> None:
    """Migrate the bench database and empty its request_logs (a clean, unbloated table)."""
    db = open_database(Settings(_env_file=None, database_url=url))
    try:
        await migrate.upgrade(db)
        async with db.engine.begin() as connection:
            await connection.execute(sa.text(_EMPTY[db.engine.dialect.name == "postgresql"]))
    finally:
        await db.close()


def row(i: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "created_at": datetime.now(UTC), "trace_id": uuid.uuid4().hex,
        "api_key_id": "key-1", "virtual_key_id": None, "config_id": None,
        "endpoint": "chat/completions", "provider": "openai", "model": "gpt-4o-mini",
        "stream": i % 2 == 0, "status_code": 200, "error_type": None, "error_message": None,
        "prompt_tokens": 120, "completion_tokens": 40, "cached_tokens": 0, "total_tokens": 160,
        "tokens_estimated": False, "cost_usd": Decimal("0.0000420"), "latency_ms": 812.5,
        "ttfb_ms": 210.0, "upstream_latency_ms": 805.0, "gateway_overhead_ms": 0.9,
        "retry_count": 0, "last_used_option": "config", "cache_status": None,
        "metadata": {"team": "search", "env": "prod"},
        "attempts": [{"path": "config", "provider": "openai", "status": 200,
                      "latency_ms": 805.0, "error": None}],
        "prompt_id": None, "prompt_version": None, "request_body": None, "response_body": None,
    }


async def ensure_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = url.rsplit("/", 1)[1]
    admin = sa.ext.asyncio.create_async_engine(url.rsplit("/", 1)[0] + "/postgres",
                                               isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        exists = await connection.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()


async def run(url: str, rows: int, batch: int) -> None:
    await ensure_database(url)
    await empty_table(url)
    db = open_database(Settings(_env_file=None, database_url=url))
    store = UsageStore(db)
    await store.ensure_partitions()
    prepared = [codec.encode(row(i)) for i in range(rows)]  # the bytes UsageLog.record makes
    with tempfile.TemporaryDirectory() as spool_dir:
        writer = UsageWriter(store.insert, Spool(Path(spool_dir)), queue_size=rows,
                             batch_size=batch, interval_s=0.05)
        writer.start()
        started = time.perf_counter()
        for item in prepared:
            writer.submit(item)
        await writer.close()
        elapsed = time.perf_counter() - started
    await store.close()
    async with db.engine.connect() as connection:
        landed = await connection.scalar(sa.text("SELECT count(*) FROM request_logs"))
    await db.close()
    print(f"{db.engine.dialect.name}: {landed} of {rows} rows in {elapsed:.2f} s = "
          f"{landed / elapsed:,.0f} rows/s (batch {batch}); target >= 10,000 rows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.rows, args.batch))


if __name__ == "__main__":
    main()

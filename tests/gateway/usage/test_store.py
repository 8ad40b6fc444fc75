"""The store's bulk path (COPY on Postgres) and its fallback for rows already there."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from gateway.db import migrate
from gateway.db.engine import open_database
from gateway.settings import Settings
from gateway.usage.store import UsageStore
from tests.support.databases import query, require_postgres


def row(**extra):
    return {"id": str(uuid.uuid4()), "created_at": datetime.now(UTC), "endpoint": "chat",
            "stream": False, "tokens_estimated": False, "latency_ms": 1.5, "retry_count": 0,
            "cost_usd": Decimal("0.0000012345"), "metadata": {"team": "a"},
            "attempts": [{"path": "config", "status": 200}], **extra}


def test_copy_writes_exact_values_and_a_replayed_batch_is_not_doubled():
    url = require_postgres()

    async def run() -> None:
        db = open_database(Settings(_env_file=None, database_url=url))
        await migrate.upgrade(db)
        store = UsageStore(db)
        await store.ensure_partitions()
        first = [row() for _ in range(3)]
        await store.insert(first)
        await store.insert(first + [row()])  # a replay resending rows that did land
        await store.close()
        await db.close()

    asyncio.run(run())
    rows = query(url, "SELECT cost_usd, metadata, attempts FROM request_logs")
    assert len(rows) == 4
    assert {r["cost_usd"] for r in rows} == {Decimal("0.0000012345")}
    assert rows[0]["metadata"] == {"team": "a"}
    assert rows[0]["attempts"] == [{"path": "config", "status": 200}]

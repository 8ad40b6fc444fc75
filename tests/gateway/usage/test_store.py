"""The store's batch INSERT on Postgres: exact values, rows already there skipped."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from gateway.db import migrate
from gateway.db.engine import Database, open_database
from gateway.settings import Settings
from gateway.usage import codec
from gateway.usage.spool import Spool
from gateway.usage.store import SLICE_ROWS, UsageStore, _slices
from gateway.usage.writer import UsageWriter
from tests.support.databases import query, require_postgres


def row(**extra) -> bytes:
    return codec.encode({
        "id": str(uuid.uuid4()), "created_at": datetime.now(UTC), "endpoint": "chat",
        "stream": False, "tokens_estimated": False, "latency_ms": 1.5, "retry_count": 0,
        "cost_usd": Decimal("0.0000012345"), "metadata": {"team": "a"},
        "attempts": [{"path": "config", "status": 200}], **extra})


@contextlib.asynccontextmanager
async def opened_store(url: str) -> AsyncIterator[tuple[Database, UsageStore]]:
    """A migrated database with today's partitions and a store on it, both closed after."""
    db = open_database(Settings(_env_file=None, database_url=url))
    try:
        await migrate.upgrade(db)
        store = UsageStore(db)
        await store.ensure_partitions()
        try:
            yield db, store
        finally:
            await store.close()
    finally:
        await db.close()


def test_a_batch_writes_exact_values_and_a_replayed_batch_is_not_doubled():
    url = require_postgres()

    async def run() -> None:
        async with opened_store(url) as (_, store):
            # More rows than one COPY message holds: the batch goes out in three slices.
            first = [row() for _ in range(2 * SLICE_ROWS + 3)]
            await store.insert(first)
            await store.insert(first + [row()])  # a replay resending rows that did land

    asyncio.run(run())
    rows = query(url, "SELECT cost_usd, metadata, attempts FROM request_logs")
    assert len(rows) == 2 * SLICE_ROWS + 4
    assert {r["cost_usd"] for r in rows} == {Decimal("0.0000012345")}
    assert rows[0]["metadata"] == {"team": "a"}
    assert rows[0]["attempts"] == [{"path": "config", "status": 200}]


def test_strings_csv_would_misread_arrive_exactly():
    url = require_postgres()
    awkward = {"model": 'quote " backslash \\ comma , "null"', "config_id": "",
               "error_message": "line\nbreak\r\ttab \\n not a newline, é 😀",
               "trace_id": "null", "metadata": {"note": 'x"y\\z\n', "none": None}}

    async def run() -> None:
        async with opened_store(url) as (_, store):
            await store.insert([row(**awkward), row()])

    asyncio.run(run())
    stored = query(url, "SELECT model, config_id, error_message, trace_id, metadata "
                        "FROM request_logs WHERE trace_id IS NOT NULL")
    assert stored == [awkward]  # "" stays empty and "null" a string: NULL is an unquoted null


def test_a_held_connection_gone_stale_is_replaced_without_an_outage():
    url = require_postgres()

    async def run() -> None:
        async with opened_store(url) as (db, store):
            await store.insert([row()])  # the store now holds a connection for its batches
            async with db.engine.connect() as other:  # a database restart, as seen by that one
                await other.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            await store.insert([row()])  # not DatabaseUnavailable: retried on a new connection

    asyncio.run(run())
    assert len(query(url, "SELECT id FROM request_logs")) == 2


def test_a_row_postgres_refuses_is_set_aside_and_its_batch_written(tmp_path):
    url = require_postgres()

    async def run() -> None:
        async with opened_store(url) as (_, store):
            writer = UsageWriter(store.insert, Spool(tmp_path), batch_size=10)
            writer.start()
            # Postgres text cannot hold NUL: the batch is refused, then retried row by row.
            for message in ("fine", "bad\x00byte", "also fine"):
                writer.submit(row(error_message=message))
            await writer.close()

    asyncio.run(run())
    stored = query(url, "SELECT error_message FROM request_logs ORDER BY error_message")
    assert [r["error_message"] for r in stored] == ["also fine", "fine"]
    [rejected] = tmp_path.glob("rejected-*.rows")
    assert b"bad\\u0000byte" in rejected.read_bytes()


async def test_slices_carry_every_row_in_order_and_the_loop_turns_between_them(monkeypatch):
    monkeypatch.setattr("gateway.usage.store.SLICE_ROWS", 2)
    seen: list[bytes | None] = []  # None: another task ran

    async def other_task() -> None:
        while True:
            seen.append(None)
            await asyncio.sleep(0)

    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    rows = [row() for _ in range(5)]
    async for data in _slices(rows):
        seen.append(data)
    other.cancel()
    slices = [data for data in seen if data is not None]
    assert len(slices) == 3
    assert b"".join(slices) == b"".join(codec.copy_data([row]) for row in rows)
    first, last = seen.index(slices[0]), seen.index(slices[-1])
    between = seen[first:last + 1]
    assert all(a is None or b is None for a, b in zip(between, between[1:], strict=False))

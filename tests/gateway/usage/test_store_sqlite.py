"""The store's inserts on an SQLite file (a connection of the writer's own, gateway/store/
inserts.py): the values stored as SQLAlchemy's INSERT stored them, replays not doubled, a
refused row set aside alone, and a write lock held past the limit an outage (spooled) after
which the store still closes (it waited for ever on the abandoned connection)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.usage import codec
from gateway.usage.spool import Spool
from gateway.usage.table import request_logs
from gateway.usage.writer import DatabaseUnavailable, UsageWriter
from tests.gateway.usage.test_store import opened_store  # (its partitions: Postgres only)

_JSON = {"metadata", "attempts", "hook_results"}


def row(at: datetime | None = None, **extra) -> bytes:
    return codec.encode({
        "id": str(uuid.uuid4()), "created_at": at or datetime.now(UTC), "endpoint": "chat",
        "stream": True, "tokens_estimated": False, "latency_ms": 1.5, "retry_count": 2,
        "cost_usd": Decimal("0.0000012345"), "metadata": {"team": "a", "n": [1, 2]},
        "attempts": [{"path": "config", "status": 200}], "prompt_tokens": 7,
        "error_message": 'quotes " and \\ and\nnewline', **extra})


def raw_rows(path: Path) -> dict[str, tuple]:
    """Every row as SQLite holds it, by id (JSON 'null' read as NULL: both read as None)."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        cursor = connection.execute("SELECT * FROM request_logs")
        names = [d[0] for d in cursor.description]
        return {r[0]: tuple(None if name in _JSON and value == "null" else value
                            for name, value in zip(names, r, strict=True))
                for r in cursor.fetchall()}


async def test_rows_are_stored_as_sqlalchemys_insert_stored_them(tmp_path):
    """Byte for byte, against the same rows through SQLAlchemy (an in-memory database takes
    that path), whether a batch goes in on the loop (64 rows at most) or in the thread."""
    base = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    rows = [row(base + timedelta(microseconds=n), hook_results=None if n % 2 else
                {"before_request_hooks": [{"id": "h", "verdict": True}]},
                hooks_failed=None if n % 2 else False, dialect="responses")
            for n in range(100)]
    batches = [rows[:3], rows[3:100]]  # inline, then through the thread
    async with opened_store(f"sqlite+aiosqlite:///{tmp_path}/file.sqlite3") as (_, store):
        assert store._rows is not None  # the file's own connection
        for batch in batches:
            await store.insert(batch)
    async with opened_store(f"sqlite+aiosqlite:///{tmp_path}/core.sqlite3") as (db, store):
        store._rows = None  # the same rows through SQLAlchemy's INSERT
        for batch in batches:
            await store.insert(batch)

    file_rows, core_rows = (raw_rows(tmp_path / "file.sqlite3"),
                            raw_rows(tmp_path / "core.sqlite3"))
    assert len(file_rows) == 100
    assert file_rows == core_rows


async def test_values_read_back_exactly_and_a_replay_is_not_doubled(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3"
    at = datetime(2026, 12, 6, 15, 30, 1, 123456, tzinfo=UTC)
    first = [row(at, hook_results={"after_request_hooks": []}, hooks_failed=True)] + \
        [row() for _ in range(80)]
    async with opened_store(url) as (db, store):
        await store.insert(first)
        await store.insert(first[:5] + [row()])  # a replay resending rows that did land
        await store.insert(first[70:] + [row()])  # and one through the thread
        async with db.engine.connect() as connection:
            count = (await connection.execute(
                sa.select(sa.func.count()).select_from(request_logs))).scalar_one()
            stored = (await connection.execute(sa.select(request_logs).where(
                request_logs.c.id == codec.decode(first[0])["id"]))).one()
    assert count == 83
    assert stored.created_at == at
    assert stored.cost_usd == Decimal("0.0000012345")
    assert stored.metadata == {"team": "a", "n": [1, 2]}
    assert stored.attempts == [{"path": "config", "status": 200}]
    assert stored.hook_results == {"after_request_hooks": []}
    assert stored.hooks_failed is True and stored.stream is True
    assert stored.error_message == 'quotes " and \\ and\nnewline'


async def test_a_row_sqlite_refuses_is_set_aside_and_its_batch_written(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3"
    async with opened_store(url) as (db, store):
        writer = UsageWriter(store.insert, Spool(tmp_path / "spool"), batch_size=10)
        writer.start()
        # `endpoint` is NOT NULL: the batch is refused, then retried row by row.
        writer.submit(row(error_message="fine"))
        writer.submit(row(error_message="no endpoint", endpoint=None))
        writer.submit(row(error_message="also fine"))
        await writer.close()
        async with db.engine.connect() as connection:
            stored = (await connection.execute(sa.select(request_logs.c.error_message)
                                               .order_by(request_logs.c.error_message))).all()
    assert [r[0] for r in stored] == ["also fine", "fine"]
    [rejected] = (tmp_path / "spool").glob("rejected-*.rows")
    assert b"no endpoint" in rejected.read_bytes()


async def test_a_write_lock_held_past_the_limit_is_an_outage_and_the_rows_follow(
        tmp_path, monkeypatch):
    """Another process holding the file's write lock: the batch is given up after the limit
    (DatabaseUnavailable: the writer spools it), and goes in once the lock is released."""
    monkeypatch.setattr("gateway.usage.store.COPY_TIMEOUT_S", 0.3)
    path = tmp_path / "gateway.sqlite3"
    async with opened_store(f"sqlite+aiosqlite:///{path}") as (db, store):
        await store.insert([row()])  # the connections open
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        batch = [row() for _ in range(5)]
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            await store.insert(batch)
        assert time.monotonic() - started < 4.5  # the limit, not SQLite's 5 s busy wait
        holder.execute("ROLLBACK")
        holder.close()
        await store.insert(batch)  # a replay: whatever the abandoned attempt did is skipped
        async with db.engine.connect() as connection:
            count = (await connection.execute(
                sa.select(sa.func.count()).select_from(request_logs))).scalar_one()
    assert count == 6


async def test_a_row_no_column_takes_is_refused_alone_not_replayed_as_an_outage(tmp_path):
    """A spooled line of another version with a list where text goes, and JSON a read could
    not parse (the fallback encoder's NaN): each is set aside; the rows beside them, and the
    ones after, reach the database (as an outage they would have held every later row)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3"
    unparseable = row(error_message="nan", attempts=[{"latency": float("nan"), "e": "\ud800"}])
    assert b"NaN" in unparseable  # (orjson refused the lone surrogate: json wrote NaN)
    async with opened_store(url) as (db, store):
        spool = Spool(tmp_path / "spool")
        writer = UsageWriter(store.insert, spool, batch_size=10)
        writer.start()
        writer.submit(row(error_message="fine"))
        writer.submit(row(error_message="list", model=["gpt-4o"]))
        writer.submit(unparseable)
        writer.submit(row(error_message="also fine"))
        await writer.close()
        assert not spool.pending()
        async with db.engine.connect() as connection:
            stored = (await connection.execute(sa.select(request_logs)
                                               .order_by(request_logs.c.error_message))).all()
    assert [r.error_message for r in stored] == ["also fine", "fine"]  # (and they read back)
    [rejected] = (tmp_path / "spool").glob("rejected-*.rows")
    assert rejected.read_bytes().count(b"\n") == 2


async def test_the_wal_stays_bounded_under_usage_rows(tmp_path):
    """The request log's random keys (row id, trace id) dirty a page a row each: counted, the
    inserter's checkpoints keep the WAL near its threshold (counted as the response table's
    ~5 pages a commit, it grew past 60 MB over these rows)."""
    path = tmp_path / "gateway.sqlite3"
    wal = path.with_name(path.name + "-wal")
    largest = 0
    async with opened_store(f"sqlite+aiosqlite:///{path}") as (_, store):
        for _ in range(400):
            await store.insert([row(trace_id=uuid.uuid4().hex) for _ in range(64)])
            largest = max(largest, wal.stat().st_size)  # (closing deletes it)
    assert 0 < largest < 16 * 1024 * 1024

"""Stored responses on an SQLite file, inserted on the event loop (inserts.py, "SQLite
inline"): a small batch commits without leaving the loop, a write lock held elsewhere sends
it through aiosqlite's thread (the loop goes on meanwhile), a duplicate is still an
IntegrityError, and the WAL the inline connection never checkpoints stays bounded."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from gateway.db import migrate
from gateway.db.engine import Database, open_database
from gateway.settings import Settings
from gateway.store import inserts
from gateway.store.responses.records import Saved
from gateway.store.responses.table import ResponseTable
from tests.gateway.dialects.test_responses_store import record

GUARD_S = 20  # a test that would hang fails after this instead (never a timing assertion)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture
async def table(path: Path) -> AsyncIterator[ResponseTable]:
    """The responses table of a fresh SQLite file, its inserter's connections open."""
    database: Database = open_database(
        Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}"))
    await migrate.upgrade(database)
    table = ResponseTable(database)
    await table.insert([row("resp_first")])  # opens the inserter's connections (a thread)
    try:
        yield table
    finally:
        await table.close()
        await database.close()


def row(response_id: str) -> Saved:
    return Saved.of(record(response_id))


def stored(path: Path, *ids: str) -> set[str]:
    """Which of `ids` another connection sees committed."""
    reader = sqlite3.connect(path)
    try:
        marks = ", ".join("?" * len(ids))
        found = reader.execute(f"SELECT id FROM responses WHERE id IN ({marks})", ids)
        return {each for (each,) in found}
    finally:
        reader.close()


def loop_held() -> Callable[[], bool]:
    """A check that the event loop has run nothing else since this call: the awaits in
    between never yielded to it (they ran inline)."""
    ran: list[bool] = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    return lambda: not ran


async def test_a_lone_row_commits_on_the_loop_seen_by_another_connection(
        table: ResponseTable, path: Path):
    held = loop_held()
    await table.insert([row("resp_inline")])
    assert held()  # no hop to a thread
    assert stored(path, "resp_inline") == {"resp_inline"}


async def test_a_held_write_lock_sends_the_insert_through_the_thread(
        table: ResponseTable, path: Path):
    inline = table._inserter._inline if table._inserter else None
    assert inline is not None  # it never waits for a lock (on the loop, that would hang it):
    assert inline.execute("PRAGMA busy_timeout").fetchone() == (0,)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the file's write lock
        insert = asyncio.create_task(table.insert([row("resp_waited")]))
        # The loop goes on meanwhile: a read through the gateway's own engine completes
        # while the insert waits for the lock (in aiosqlite's thread, not on the loop).
        assert await asyncio.wait_for(table.link("resp_other"), GUARD_S) is None
        assert not insert.done()
        blocker.execute("COMMIT")
        await asyncio.wait_for(insert, GUARD_S)
    finally:
        blocker.close()
    assert stored(path, "resp_waited") == {"resp_waited"}
    held = loop_held()  # the lock gone, the next insert is inline again
    await table.insert([row("resp_after")])
    assert held() and stored(path, "resp_after") == {"resp_after"}


async def test_a_duplicate_row_is_an_integrity_error_and_commits_nothing(
        table: ResponseTable, path: Path):
    await table.insert([row("resp_twice")])
    held = loop_held()
    with pytest.raises(IntegrityError):
        await table.insert([row("resp_new"), row("resp_twice")])
    assert held()  # told inline, as the thread would tell it
    assert stored(path, "resp_new", "resp_twice") == {"resp_twice"}  # one statement: atomic
    await table.insert([row("resp_new")])  # the inline connection is still fine
    assert stored(path, "resp_new") == {"resp_new"}


async def test_the_wal_is_checkpointed_with_no_other_writer(
        table: ResponseTable, path: Path, monkeypatch: pytest.MonkeyPatch):
    """With no other connection to checkpoint it, the WAL stays near the inserter's bound:
    now and then an insert goes through the thread, checkpoints, and restarts the WAL."""
    monkeypatch.setattr(inserts, "_CHECKPOINT_BYTES", 200_000)  # ~10 one-row commits
    through_thread = 0
    for n in range(300):  # ~6 MB of WAL, never checkpointed
        held = loop_held()
        await table.insert([row(f"resp_{n:03d}")])
        through_thread += not held()
    wal = path.with_name(path.name + "-wal").stat().st_size
    assert wal < 1_000_000, wal
    assert 0 < through_thread < 100, through_thread  # one per checkpoint
    assert len(stored(path, *(f"resp_{n:03d}" for n in range(300)))) == 300


@pytest.mark.parametrize(("megabytes", "rows"), [(8, 1), (4, 8)])
async def test_a_batch_of_megabytes_is_written_off_the_event_loop(
        table: ResponseTable, path: Path, megabytes: int, rows: int) -> None:
    """A stored input can be megabytes: SQLite writing it must not hold the loop."""
    big = "x" * (megabytes * 1_000_000)
    batch = [Saved.of(record(f"resp_big_{n}", text=big)) for n in range(rows)]
    held = loop_held()
    await table.insert(batch)
    assert not held(), f"{rows} x {megabytes} MB were written with the event loop held"
    assert stored(path, *(saved.id for saved in batch)) == {saved.id for saved in batch}


# Two processes storing into one file, as `gateway serve --workers 2` does: each one's
# checkpoint is kept from finishing by the other's commits now and then, and the WAL must
# still restart (it grew to 160 MB for these rows when a checkpoint that had not finished
# reset the inserter's estimate).
_WORKER = r"""
import asyncio, sys
from tests.gateway.dialects.test_responses_store import record
from gateway.db.engine import open_database
from gateway.settings import Settings
from gateway.store.responses.records import Saved
from gateway.store.responses.table import ResponseTable

async def main(path, worker, rows):
    db = open_database(Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}"))
    table = ResponseTable(db)
    for n in range(rows):
        await table.insert([Saved.of(record(f"resp_{worker}_{n}", text="y" * 2000))])
        await asyncio.sleep(0.002)  # the pace of a worker's answers, not a synchronisation
    await table.close()
    await db.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_two_processes_on_one_file_keep_the_wal_bounded(path: Path) -> None:
    rows = 3000  # each: ~80 MB of WAL if it never restarted, a few MB when it does
    database = open_database(Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}"))
    asyncio.run(migrate.upgrade(database))
    asyncio.run(database.close())
    root = Path(__file__).resolve().parents[3]
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(path), str(n), str(rows)],
                                cwd=root) for n in range(2)]
    wal = path.with_name(path.name + "-wal")
    peak = 0
    while any(worker.poll() is None for worker in workers):
        with contextlib.suppress(OSError):
            peak = max(peak, wal.stat().st_size)
        with contextlib.suppress(subprocess.TimeoutExpired):
            workers[0].wait(timeout=0.05)
    assert [worker.wait() for worker in workers] == [0, 0]
    assert peak < 40_000_000, f"the WAL reached {peak / 1e6:.0f} MB for {2 * rows} rows"
    assert len(stored(path, *(f"resp_{n}_{i}" for n in range(2) for i in range(0, rows, 97)))) \
        == 2 * len(range(0, rows, 97))

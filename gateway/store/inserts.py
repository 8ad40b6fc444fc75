"""A writer's own database connection: each batch of rows in one round trip, through the
driver (asyncpg's `executemany`; for SQLite, one multi-row INSERT per 90 rows). The response
store's writer inserts through one (every stored answer waits for its commit), and so does the
usage writer on SQLite (Postgres takes its rows by COPY: usage/store.py).

Why not SQLAlchemy Core, as everywhere else: every stored answer waits for its row's commit,
so a round of inserts is on the request path. Through Core, a one-row round cost 300-800 µs of
CPU (compiling the multi-row statement, a pool checkout with its pre-ping, and on Postgres
BEGIN, SET LOCAL, INSERT, COMMIT: four round trips); through the driver, on a connection held
open, 100-150 µs and one round trip (bench/README.md). The statement is still made from the
table's own definition, and driver errors are raised as SQLAlchemy's (IntegrityError for a row
already there, DBAPIError otherwise), as a Connection would raise them.

Durability: Postgres runs the session with `synchronous_commit` off (a commit does not wait
for the WAL flush: a gateway killed after it loses nothing; only the database host crashing
could lose the last fraction of a second); asyncpg's executemany is one transaction. SQLite
gets connections of its own to the same file, WAL with `synchronous=NORMAL` (no fsync per
commit, the same bargain), in autocommit: each multi-row statement is its own transaction. A
batch of more than 90 rows (990 values, under SQLite's oldest limit of 999) is several
statements; should one fail after another committed, the writer's retry finds those rows
there and inserts the rest one by one.

SQLite inline: a batch of up to _INLINE_ROWS rows and _INLINE_BYTES of text is inserted on
the event loop itself, through a stdlib sqlite3 connection of the inserter's own (~35 µs wall
and 25 µs CPU for one row, against ~130 and 105 through aiosqlite's thread: the hop there and
back cost more than the insert); a larger one (a stored input of megabytes, a usage batch of
hundreds of rows) goes through the thread. Under load the thread is also slow to come back:
it needs the GIL from a busy event loop (up to the 5 ms switch interval, twice a call), and
every answer of the round waits that long. The inline insert never waits on the loop: its
`busy_timeout` is 0, so a write lock held elsewhere (the other store's writer in its thread,
another process) answers SQLITE_BUSY at once, having committed nothing (one statement in
autocommit), and the batch goes through aiosqlite's thread instead, which waits for the
lock (5 s at most, within the inserter's limit). Nor does it fsync on the loop:
neither connection checkpoints by itself (`wal_autocheckpoint=0`); once _CHECKPOINT_BYTES of
WAL are written, the next batch goes through the thread, which tries a RESTART checkpoint
before its insert, without waiting for anyone: when no other connection is writing or
reading an older snapshot it copies the WAL into the file and makes the next commit (that
insert's, as a rule) write the WAL from its top again; otherwise it copies what it can, and
until one finishes every batch goes through the thread and tries again. (A PASSIVE one was
not enough: with two processes on one file, `--workers 2`, it copied everything and the WAL
still never restarted, growing by 160 MB in 6,000 rows; a RESTART that waits stalled every
writer on the file under load.) That is what SQLite's autocheckpoint did
within a commit, kept off the loop. (Not in the background: an inline commit made while the
checkpoint ran kept the WAL from restarting, and it grew without end.) A checkpoint the
file's other connections complete (at their 1000 pages) can still make one inline commit
restart the WAL on the loop (a header write and an fsync, ~0.2 ms here): rare, the inserter
checkpointing first.

Errors, as the writers tell them apart: IntegrityError for a row already there (unless
duplicates are skipped) or a NOT NULL broken; DataError for a row the database refuses (a
value too long or malformed: that row's fault, not an outage); DBAPIError for the rest (the
database out, or an insert the server itself ended past its `statement_timeout`, 80% of the
inserter's limit), and the `Bounds`' error (the response store's StoreTimeout) for a
database that did not answer within the limit, whose connection is then dropped at once
(asyncpg's `terminate`, no goodbye to a server that does not answer).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import Table, event
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from gateway.db.engine import Database

_SQLITE_ROWS = 90  # rows per SQLite statement (values per statement: at most 999)
# A batch inserted inline costs the loop ~10 µs a row past the first (~0.6 ms at 64), the hop
# to aiosqlite's thread ~0.1 ms of CPU and, with the loop busy, milliseconds of waiting for
# the GIL (bench/README.md: at concurrency 64, stored answers at 8 rows inline spent ~50 µs
# a request more CPU, most of it in that thread, and waited longer).
_INLINE_ROWS = 64
# Nor a batch past this much text: a stored input can be megabytes (up to the body cap), and
# SQLite writes ~3 ms a megabyte here, which the loop must not wait out.
_INLINE_BYTES = 256 * 1024
# WAL written between the inserter's checkpoints, as estimated: each commit ~5 pages (the
# responses table's leaf, its three indexes' and page 1; measured) plus the rows' text, plus
# a page a row in each index whose keys come at random (`random_pages`: the request log's
# row and trace ids; uncounted, its WAL grew past 60 MB in 25,000 rows). ~850 pages:
# under SQLite's own autocheckpoint (1000), so the file's other writers seldom get there
# first, and about as often (a checkpoint costs its batch ~2 ms here: copies and 3 fsyncs).
_COMMIT_BYTES = 5 * 4096
_PAGE = 4096
_CHECKPOINT_BYTES = 3_500_000
_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes): another connection's lock

ErrorTypes = tuple[type[BaseException], ...]


def _driver_errors(is_postgres: bool) -> tuple[ErrorTypes, ErrorTypes, ErrorTypes]:
    """(duplicate, refused, failed): the driver's errors by what they mean. A row's own fault
    (refused): a value the column or the driver refuses (class 22 and the rest of 23 on
    Postgres; SQLite's "string or blob too big"; a value no bind processor takes, an integer
    past 64 bits). asyncpg is imported only for Postgres: an embedded gateway never loads it
    (test_lean_process)."""
    duplicate: ErrorTypes = (sqlite3.IntegrityError,)
    refused: ErrorTypes = (sqlite3.DataError, TypeError, ValueError, OverflowError)
    failed: ErrorTypes = (sqlite3.Error, OSError)
    if is_postgres:
        import asyncpg
        duplicate += (asyncpg.UniqueViolationError,)
        refused += (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError,
                    asyncpg.ProgramLimitExceededError)
        failed += (asyncpg.PostgresError, asyncpg.InterfaceError)
    return duplicate, refused, failed


class Bounds(NamedTuple):
    """How long one insert may take (read at each insert), and the error past it."""

    limit: Callable[[], float]
    timed_out: Callable[[float], BaseException]


class RowInserter:
    """Multi-row inserts into `table` on one connection of its own (opened when first
    needed, reopened after a failure). The values of `as_text` columns (JSON) come as the
    text the store serialised itself; the others are bound as their column types bind them.
    `skip_duplicates`: a row whose key is there already is skipped (ON CONFLICT DO NOTHING),
    not an IntegrityError. `random_pages`: the table's indexes whose keys come in no order
    (each row's insert dirties a page of its own there), for the WAL's estimate."""

    def __init__(self, db: Database, table: Table, columns: tuple[str, ...],
                 as_text: tuple[str, ...], bounds: Bounds, *,
                 skip_duplicates: bool = False, random_pages: int = 0) -> None:
        self.is_postgres = not db.is_sqlite
        self._bounds = bounds
        self._random_pages = random_pages
        self._duplicate, self._refused, self._failed = _driver_errors(self.is_postgres)
        self._engine = _writer_engine(db.engine, bounds.limit())
        quoted = ", ".join(f'"{name}"' for name in columns)  # ("metadata", ...)
        self._into = f"INSERT INTO {table.name} ({quoted}) VALUES "
        self._on_conflict = " ON CONFLICT DO NOTHING" if skip_duplicates else ""
        self._sql = self._into + "(" + ", ".join(
            f"${n}" for n in range(1, len(columns) + 1)) + ")" + self._on_conflict
        self._row_marks = "(" + ", ".join("?" * len(columns)) + ")"  # SQLite: one row's
        self._sqlite_statements: dict[int, str] = {}  # by number of rows
        dialect = self._engine.dialect
        self._binds: list[Callable[[Any], Any] | None] = [
            None if name in as_text else
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in columns]
        self._connection: AsyncConnection | None = None
        self._driver: Any = None
        self._closing: set[asyncio.Task[None]] = set()  # connections given up on, closing
        self._inline: sqlite3.Connection | None = None  # SQLite: inserts on the event loop
        self._wal_bytes = 0  # SQLite: WAL written since the last checkpoint (an estimate)

    @classmethod
    def of(cls, db: Database, table: Table, columns: tuple[str, ...],
           as_text: tuple[str, ...], bounds: Bounds, *,
           skip_duplicates: bool = False, random_pages: int = 0) -> RowInserter | None:
        """None for an in-memory SQLite database: a second connection would be another
        database (the store then inserts through the engine's own connection)."""
        if db.is_sqlite and db.engine.url.database in (None, "", ":memory:"):
            return None
        return cls(db, table, columns, as_text, bounds, skip_duplicates=skip_duplicates,
                   random_pages=random_pages)

    async def insert(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert `rows` (values in column order): one transaction (on SQLite, one per 90
        rows), within the limit."""
        if not rows:
            return
        if not self.is_postgres:
            inline = self._inline
            if (inline is not None and len(rows) <= _INLINE_ROWS
                    and self._wal_bytes < _CHECKPOINT_BYTES
                    and await self._inline_insert(inline, rows)):
                return
        limit = self._bounds.limit()
        try:
            async with asyncio.timeout(limit):
                await self._insert(rows)  # (a TimeoutError inside is raised as DBAPIError)
        except TimeoutError:
            self._abandon()
            raise self._bounds.timed_out(limit) from None

    async def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        driver = None
        try:
            bound = self._bound(rows)
            driver = await self._connect()
            if self.is_postgres:
                await driver.executemany(self._sql, bound)
            else:
                if self._wal_bytes >= _CHECKPOINT_BYTES:
                    await self._checkpoint(driver)
                for start in range(0, len(bound), _SQLITE_ROWS):
                    chunk = bound[start:start + _SQLITE_ROWS]
                    values = _flat(chunk)
                    await driver.execute(self._sqlite_statement(len(chunk)), values)
                    self._wal_bytes += self._wal_estimate(len(chunk), _text_bytes(values))
        except self._duplicate as exc:
            raise IntegrityError(self._sql, None, exc) from exc
        except self._refused as exc:
            raise DataError(self._sql, None, exc) from exc
        except self._failed as exc:
            if driver is not None and driver is self._driver:  # (not one given up on since)
                await self._reset()
            raise DBAPIError(self._sql, None, exc) from exc

    def _bound(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """`rows` with each value as its column binds it."""
        return [tuple(value if bind is None or value is None else bind(value)
                      for bind, value in zip(self._binds, row, strict=True))
                for row in rows]

    async def _checkpoint(self, driver: Any) -> None:
        """A RESTART checkpoint in aiosqlite's thread (see the module docstring). The estimate
        starts again only once it finished: until then every batch comes here and tries
        again, as SQLite's own autocheckpoint does on each commit past its threshold."""
        # Without waiting: RESTART waits for the other connections holding the writer lock,
        # which stalled every writer on the file under load (and the answers with them). One
        # that cannot finish now does what PASSIVE does, and the next batch tries again.
        await driver.execute("PRAGMA busy_timeout=0")
        try:
            rows = await driver.execute_fetchall("PRAGMA wal_checkpoint(RESTART)")
        finally:
            await driver.execute("PRAGMA busy_timeout=5000")
        busy, log, copied = rows[0] if rows else (1, 0, 0)
        if busy == 0 and log == copied:
            self._wal_bytes = 0

    async def _inline_insert(self, inline: sqlite3.Connection,
                             rows: list[tuple[Any, ...]]) -> bool:
        """Insert `rows` (1 to _INLINE_ROWS) on the event loop: True once committed; False
        when the batch holds more than _INLINE_BYTES of text, or another connection holds
        the write lock (nothing committed: the caller goes through the thread, which waits
        for it). Awaits nothing but the closing of the connection after a failure."""
        try:
            values = _flat(self._bound(rows))
            size = _text_bytes(values)
            if size > _INLINE_BYTES:
                return False
            inline.execute(self._sqlite_statement(len(rows)), values)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _BUSY:
                return False
            await self._close_inline()
            raise DBAPIError(self._sql, None, exc) from exc
        except self._duplicate as exc:
            raise IntegrityError(self._sql, None, exc) from exc
        except self._refused as exc:
            raise DataError(self._sql, None, exc) from exc
        except self._failed as exc:
            await self._close_inline()
            raise DBAPIError(self._sql, None, exc) from exc
        self._wal_bytes += self._wal_estimate(len(rows), size)
        return True

    def _wal_estimate(self, rows: int, text: int) -> int:
        """WAL one commit of `rows` rows writes: the commit's own pages, the rows' text, and
        a page for each row in each index whose keys come at random."""
        return _COMMIT_BYTES + text + rows * self._random_pages * _PAGE

    async def _close_inline(self) -> None:
        """Close the inline connection, in a thread (closing the file's last connection
        checkpoints it); the next batch opens a new one."""
        inline, self._inline = self._inline, None
        if inline is not None:
            await asyncio.to_thread(inline.close)

    def _sqlite_statement(self, rows: int) -> str:
        statement = self._sqlite_statements.get(rows)
        if statement is None:
            statement = self._sqlite_statements[rows] = \
                self._into + ", ".join([self._row_marks] * rows) + self._on_conflict
        return statement

    async def _connect(self) -> Any:
        """The driver's connection, opened when needed (on SQLite, with the inline one)."""
        if self._driver is None:
            self._connection = await self._engine.connect()
            self._driver = (await self._connection.get_raw_connection()).driver_connection
        if self._inline is None and not self.is_postgres:
            self._inline = await asyncio.to_thread(_open_inline, self._engine)
        return self._driver

    def _abandon(self) -> None:
        """Drop a connection whose insert did not answer in time, without waiting on it: the
        server rolls back what it did not commit once it sees the connection gone. Not an
        SQLite one: its statement is waiting for a lock in aiosqlite's thread, bounded by
        its busy_timeout, and it may still commit (the retry finds those rows there); the
        next batch queues behind it. (Dropped, that connection's close never finished once
        its thread had ended, and the engine's dispose at shutdown waited on it for ever.)"""
        if not self.is_postgres:
            return
        connection, driver = self._connection, self._driver
        self._connection = self._driver = None
        if driver is not None:
            driver.terminate()  # closes the socket now; asyncpg's close() would wait on it
        if connection is not None:  # its wrapper, closed apart (nothing left to wait on)
            closing = asyncio.get_running_loop().create_task(self._drop(connection))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _reset(self) -> None:
        """Drop the connection after a failure: the next batch opens a new one."""
        connection, self._connection, self._driver = self._connection, None, None
        await self._drop(connection)

    @staticmethod
    async def _drop(connection: AsyncConnection | None) -> None:
        if connection is not None:
            try:
                await connection.invalidate()
                await connection.close()
            except (DBAPIError, OSError):
                pass  # already gone

    async def close(self) -> None:
        await self._close_inline()
        await self._reset()
        await self._engine.dispose()


def _writer_engine(engine: AsyncEngine, limit: float) -> AsyncEngine:
    if engine.dialect.name == "sqlite":
        writer = create_async_engine(engine.url, poolclass=StaticPool, hide_parameters=True,
                                     isolation_level="AUTOCOMMIT")
        event.listen(writer.sync_engine, "connect", _sqlite_pragmas)
        return writer
    # The server ends an insert slower than most of the gateway's bound itself, so an insert
    # the gateway gave up on does not commit later, after a DELETE of its row went through.
    timeout_ms = max(1, int(limit * 800))
    return create_async_engine(
        engine.url, poolclass=NullPool, hide_parameters=True, isolation_level="AUTOCOMMIT",
        connect_args={"server_settings": {"synchronous_commit": "off",
                                          "statement_timeout": str(timeout_ms)}})


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # the inserter checkpoints (_insert)
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _flat(rows: list[tuple[Any, ...]]) -> list[Any]:
    """Rows' values in one list: one multi-row SQLite statement's parameters."""
    return [value for row in rows for value in row]


def _text_bytes(values: list[Any]) -> int:
    """The text and blobs of one statement's values (characters for text: an estimate)."""
    return sum(len(value) for value in values if isinstance(value, str | bytes))


def _open_inline(engine: AsyncEngine) -> sqlite3.Connection:
    """The inline connection to the writer engine's file (opened in a thread: file I/O). It
    may wait for a lock while it is opened (there, bounded by the inserter's limit), never after."""
    (database, *_), options = engine.dialect.create_connect_args(engine.url)  # (its URI)
    options.update(isolation_level=None, check_same_thread=False, timeout=5.0)
    inline = sqlite3.connect(database, **options)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=0",
                       "busy_timeout=0"):
            inline.execute(f"PRAGMA {pragma}")
    except BaseException:
        inline.close()
        raise
    return inline

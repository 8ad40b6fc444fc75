"""Writing usage rows to the database, and keeping Postgres's daily partitions ahead of time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db.engine import Database
from gateway.store.inserts import Bounds, RowInserter
from gateway.usage import codec
from gateway.usage.table import request_logs
from gateway.usage.writer import DatabaseUnavailable

log = logging.getLogger("gateway.usage")

_COLUMNS = ", ".join(f'"{name}"' for name in codec.COLUMNS)
# A batch whose COPY hit a row already stored (a replay after an uncertain commit) goes again
# through this session's staging table, from which only the missing rows are inserted.
_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS usage_staging "
          "(LIKE request_logs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
_FROM_STAGE = (f"INSERT INTO request_logs ({_COLUMNS}) SELECT {_COLUMNS} FROM usage_staging "
               "ON CONFLICT DO NOTHING")


# Rows per COPY message. A batch goes out in slices, the writer yielding to the event loop
# between them: neither the gateway (joining a slice) nor Postgres (inserting it) holds a core
# for more than about a millisecond. Whole, a 500-row batch stopped the loop for 0.5 to 0.9
# ms (every request in flight waits that long) and kept a backend busy for ~10 ms.
SLICE_ROWS = 50
# asyncpg waits for the socket to drain before each slice, and that wait never ends if the
# connection is lost while Postgres was not reading (asyncpg only fails the COPY's own waiter):
# a COPY that long is given up, the connection closed, and its batch spooled. A batch
# normally takes milliseconds.
COPY_TIMEOUT_S = 10.0
# SQLite: a batch's inserts (through gateway/store/inserts.py), past which the batch is spooled
# as a COPY's is (the statement, still in SQLite's busy wait, may yet commit: the replay skips
# those rows).
_SQLITE_BOUNDS = Bounds(lambda: COPY_TIMEOUT_S,
                        lambda limit: TimeoutError(f"a usage insert took over {limit:g} s"))


async def _slices(rows: list[bytes]) -> AsyncIterator[bytes]:
    for start in range(0, len(rows), SLICE_ROWS):
        if start:
            await asyncio.sleep(0)  # the loop turns between slices
        yield codec.copy_data(rows[start:start + SLICE_ROWS])


async def _copy(driver: Any, table: str, rows: list[bytes]) -> None:
    try:
        async with asyncio.timeout(COPY_TIMEOUT_S):  # a TimeoutError is an OSError: an outage
            await driver.copy_to_table(table, source=_slices(rows),
                                       columns=codec.COLUMNS, format="csv", escape="\\",
                                       null="null")
    except TimeoutError:
        # Not a graceful close: a ROLLBACK (the staging path) would wait, unbounded, for the
        # cancel asyncpg sent to a server that does not answer.
        driver.terminate()
        raise
    except RuntimeError as exc:
        # uvloop: asyncpg's CopyFail write on the lost connection ("unable to perform
        # operation on <TCPTransport closed=True>") replaces the error, or a cancellation.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError from exc
        if driver.is_closed():
            raise ConnectionError("the connection was lost during a COPY") from exc
        raise


def _driver_failures(postgres: bool) -> tuple[type[Exception], ...]:
    """asyncpg's own connection errors (the batch bypasses SQLAlchemy's wrapping); asyncpg is
    imported only for Postgres, so an SQLite gateway does not load it."""
    if not postgres:
        return ()
    import asyncpg

    return (asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.InterfaceError)


class UsageStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.postgres = database.engine.dialect.name == "postgresql"
        # SQLite's INSERT (Postgres takes a COPY). Replays may resend rows that did
        # reach the database: those are skipped, not doubled. A file's rows go through a
        # connection of the writer's own, as the driver takes them (the JSON columns as the
        # text they were encoded as): one statement per 90 rows, each its own transaction, so
        # the file's write lock is held for an insert only, never across a turn of the event
        # loop (a stored response's answer may be waiting for that lock). SQLAlchemy's INSERT
        # (an in-memory database) held it from the insert to the COMMIT and decoded the JSON
        # columns to encode them again: ~23,000 rows/s in 500-row batches against ~33,000
        # (bench.usage_writer).
        self._insert = sqlite.insert(request_logs).on_conflict_do_nothing()
        # Its random keys: the row id (a uuid) and the trace id.
        self._rows = None if self.postgres else RowInserter.of(
            database, request_logs, codec.COLUMNS, codec.JSON_COLUMNS, _SQLITE_BOUNDS,
            skip_duplicates=True, random_pages=2)
        # The writer's own connection for its batches, kept between them: a pool checkout costs
        # a ping and a reset round trip per batch, which showed in the p99 of requests.
        self._held: AsyncConnection | None = None

    async def close(self) -> None:
        """Give back the connection held for the batches."""
        if self._rows is not None:
            with contextlib.suppress(Exception):
                await self._rows.close()
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):
                await held.close()

    async def _drop_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):
                await held.invalidate()
                await held.close()

    async def insert(self, rows: list[bytes]) -> None:
        """Write a batch of encoded rows (codec.encode_values): on Postgres one COPY of their
        CSV lines (codec.copy_data), in slices, on the writer's own connection; on an SQLite
        file multi-row INSERTs on the writer's own connection; in memory SQLAlchemy's INSERT.
        All skip rows already present (a replay after an uncertain commit)."""
        try:
            if self.postgres:
                await self._insert_batch(rows)
                return
            if self._rows is not None:
                values = [codec.sqlite_values(row) for row in rows]  # (a bad row: ValueError)
                try:
                    await self._rows.insert(values)
                except (IntegrityError, DataError):
                    raise  # a row refused (a NOT NULL broken, a value unbindable)
                except DBAPIError as exc:  # the rest: the file unwritable, locked, gone
                    raise DatabaseUnavailable(type(exc.orig).__name__) from exc
                return
            async with self.database.engine.begin() as connection:
                await connection.execute(self._insert, [codec.decode(row) for row in rows])
        except ((OperationalError, InterfaceError, OSError, ConnectionError)
                + _driver_failures(self.postgres)) as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnavailable(type(exc).__name__) from exc
            raise

    async def _insert_batch(self, rows: list[bytes]) -> None:
        held_before = self._held is not None
        try:
            await self._execute_on_held(rows)
        except Exception:
            if not held_before or self._held is not None:  # a new connection, or a refused row
                raise
            # The connection kept from an earlier batch may have gone stale (a database
            # restart, an idle timeout), which asyncpg reports in more than one way: once
            # more on a new connection, as a pool ping would; a real fault fails again.
            await self._execute_on_held(rows)

    async def _execute_on_held(self, rows: list[bytes]) -> None:
        """One COPY on the held connection (opened if need be), through the staging table if
        a row is already there; the connection is dropped after any other failure."""
        import asyncpg

        if self._held is None:
            self._held = await self.database.engine.connect()
        try:
            raw = await self._held.get_raw_connection()
            driver = raw.driver_connection  # asyncpg's own connection, in autocommit
            assert driver is not None
            try:
                await _copy(driver, "request_logs", rows)
            except asyncpg.exceptions.UniqueViolationError:  # the COPY was refused whole
                async with driver.transaction():
                    await driver.execute(_STAGE)
                    await _copy(driver, "usage_staging", rows)
                    await driver.execute(_FROM_STAGE)
        except (asyncpg.exceptions.DataError,
                asyncpg.exceptions.IntegrityConstraintViolationError):
            raise  # a row Postgres refuses: the connection is fine, the writer sets it aside
        except BaseException:
            # Whatever broke (an outage, a cancelled statement), the next batch starts afresh.
            await self._drop_held()
            raise

    async def ensure_partitions(self, days_ahead: int = 7, today: date | None = None) -> None:
        """Create the daily partitions from yesterday to `days_ahead` days out (Postgres)."""
        if not self.postgres:
            return
        start = today or datetime.now(UTC).date()
        for offset in range(-1, days_ahead + 1):
            day = start + timedelta(days=offset)
            name = f"request_logs_{day:%Y%m%d}"
            bounds = f"FROM ('{day.isoformat()}') TO ('{day + timedelta(days=1)}')"
            statement = sa.text(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF request_logs "
                                f"FOR VALUES {bounds}")
            try:
                async with self.database.engine.begin() as connection:
                    await connection.execute(statement)
            except DBAPIError as exc:
                # Rows for that day already sit in the default partition; they stay there.
                log.warning("could not create partition %s: %s", name, type(exc).__name__)



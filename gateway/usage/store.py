"""Writing usage rows to the database, and keeping Postgres's daily partitions ahead of time."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db.engine import Database
from gateway.usage import codec
from gateway.usage.table import request_logs
from gateway.usage.writer import DatabaseUnavailable

log = logging.getLogger("gateway.usage")

_COLUMNS = ", ".join(f'"{column.name}"' for column in request_logs.columns)
# A whole batch in one statement: its rows as one JSON array parameter, made into rows by
# Postgres. Encoding records in the driver (COPY) cost the gateway's event loop ~5 us a row
# in bursts of a few milliseconds per batch; here the loop only joins bytes. Rows a replay
# sends twice are skipped, not doubled.
_INSERT_BATCH = (f"INSERT INTO request_logs ({_COLUMNS}) SELECT {_COLUMNS} "
                 "FROM json_populate_recordset(NULL::request_logs, $1::json) "
                 "ON CONFLICT DO NOTHING")


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
        # SQLite's INSERT (Postgres takes _INSERT_BATCH). Replays may resend rows that did
        # reach the database: those are skipped, not doubled.
        self._insert = sqlite.insert(request_logs).on_conflict_do_nothing()
        # The writer's own connection for its batches, kept between them: a pool checkout costs
        # a ping and a reset round trip per batch, which showed in the p99 of requests.
        self._held: AsyncConnection | None = None

    async def close(self) -> None:
        """Give back the connection held for the batches."""
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
        """Write a batch of encoded rows (codec.encode): on Postgres one INSERT ... SELECT
        from the rows as JSON, on the writer's own connection; elsewhere SQLAlchemy's
        INSERT. Both skip rows already present (a replay after an uncertain commit)."""
        try:
            if self.postgres:
                await self._insert_batch(codec.batch(rows))
                return
            async with self.database.engine.begin() as connection:
                await connection.execute(self._insert, [codec.decode(row) for row in rows])
        except (OperationalError, InterfaceError, OSError, ConnectionError,
                *_driver_failures(self.postgres)) as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnavailable(type(exc).__name__) from exc
            raise

    async def _insert_batch(self, payload: str) -> None:
        held_before = self._held is not None
        try:
            await self._execute_on_held(payload)
        except Exception:
            if not held_before:
                raise
            # The connection kept from an earlier batch may have gone stale (a database
            # restart, an idle timeout), which asyncpg reports in more than one way: once
            # more on a new connection, as a pool ping would; a real fault fails again.
            await self._execute_on_held(payload)

    async def _execute_on_held(self, payload: str) -> None:
        """One statement on the held connection (opened if need be); dropped after any
        failure."""
        if self._held is None:
            self._held = await self.database.engine.connect()
        try:
            raw = await self._held.get_raw_connection()
            driver = raw.driver_connection  # asyncpg's own connection, in autocommit
            assert driver is not None
            await driver.execute(_INSERT_BATCH, payload)
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



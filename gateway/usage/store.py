"""Writing usage rows to the database, and keeping Postgres's daily partitions ahead of time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db.engine import Database
from gateway.usage.row import json_text
from gateway.usage.table import request_logs
from gateway.usage.writer import DatabaseUnavailable

log = logging.getLogger("gateway.usage")


_COLUMNS = tuple(column.name for column in request_logs.columns)
# Rows carry these as JSON text (see row.json_text); rows spooled by older versions, as values.
_JSON_COLUMNS = ("metadata", "attempts")
_METADATA, _ATTEMPTS = (_COLUMNS.index(name) for name in _JSON_COLUMNS)
_VALUES = operator.itemgetter(*_COLUMNS)
# Rows converted and encoded between two yields to the event loop: a whole batch at once
# would hold every request in flight for a millisecond or more.
_RECORDS_PER_SLICE = 10


def _driver_failures(postgres: bool) -> tuple[type[Exception], ...]:
    """asyncpg's own connection errors (COPY bypasses SQLAlchemy's wrapping); asyncpg is
    imported only for Postgres, so an SQLite gateway does not load it."""
    if not postgres:
        return ()
    import asyncpg

    return (asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.InterfaceError)


class UsageStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.postgres = database.engine.dialect.name == "postgresql"
        dialect = postgresql if self.postgres else sqlite
        # Replays may resend rows that did reach the database: those are skipped, not doubled.
        self._insert = dialect.insert(request_logs).on_conflict_do_nothing()
        # The writer's own connection for COPY, kept between batches: a pool checkout costs
        # a ping and a reset round trip per batch, which showed in the p99 of requests.
        self._held: AsyncConnection | None = None

    async def close(self) -> None:
        """Give back the connection held for COPY."""
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

    async def insert(self, rows: list[dict[str, Any]]) -> None:
        """Write a batch: Postgres's COPY (the driver's bulk path) when it can, else INSERT
        ... ON CONFLICT DO NOTHING, which also absorbs rows a replay sends twice."""
        try:
            if self.postgres and await self._copy(rows):
                return
            async with self.database.engine.begin() as connection:
                await connection.execute(self._insert, [_insert_params(row) for row in rows])
        except (OperationalError, InterfaceError, OSError, ConnectionError,
                *_driver_failures(self.postgres)) as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnavailable(type(exc).__name__) from exc
            raise

    async def _copy(self, rows: list[dict[str, Any]]) -> bool:
        """COPY the batch in one round trip; False when a row is already there (a replay)."""

        async def records() -> AsyncIterator[tuple[Any, ...]]:
            # asyncpg encodes as this yields: requests run between slices of the batch.
            for start in range(0, len(rows), _RECORDS_PER_SLICE):
                if start:
                    await asyncio.sleep(0)
                for row in rows[start:start + _RECORDS_PER_SLICE]:
                    yield _copy_record(row)

        held_before = self._held is not None
        try:
            return await self._copy_on_held(records)
        except Exception:
            if not held_before:
                raise
            # The connection kept from an earlier batch may have gone stale (a database
            # restart, an idle timeout), which asyncpg reports in more than one way: once
            # more on a new connection, as a pool ping would; a real fault fails again.
            return await self._copy_on_held(records)

    async def _copy_on_held(self, records: Callable[[], AsyncIterator[tuple[Any, ...]]]) -> bool:
        """One COPY on the held connection (opened if need be); dropped after any failure."""
        import asyncpg

        if self._held is None:
            self._held = await self.database.engine.connect()
        try:
            raw = await self._held.get_raw_connection()
            driver = raw.driver_connection  # asyncpg's own connection, in autocommit
            assert driver is not None
            await driver.copy_records_to_table("request_logs", records=records(),
                                               columns=list(_COLUMNS))
        except asyncpg.exceptions.UniqueViolationError:
            return False  # the COPY was refused whole; the connection is fine
        except BaseException:
            # Whatever broke (an outage, a cancelled COPY), the next COPY starts afresh.
            await self._drop_held()
            raise
        return True

    async def ensure_partitions(self, days_ahead: int = 7, today: date | None = None) -> None:
        """Create the daily partitions from yesterday to `days_ahead` days out (Postgres)."""
        if self.database.engine.dialect.name != "postgresql":
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


def _copy_record(row: dict[str, Any]) -> tuple[Any, ...]:
    """The row's values in column order; COPY takes jsonb as text."""
    try:
        values = _VALUES(row)  # one C call; rows from build_row have every column
    except KeyError:
        values = tuple(row.get(name) for name in _COLUMNS)
    if isinstance(values[_METADATA], str | None) and isinstance(values[_ATTEMPTS], str | None):
        return values
    # A row spooled by an older version holds JSON values, not text.
    fixed = list(values)
    for position in (_METADATA, _ATTEMPTS):
        if not isinstance(fixed[position], str):
            fixed[position] = json_text(fixed[position])
    return tuple(fixed)


def _insert_params(row: dict[str, Any]) -> dict[str, Any]:
    """SQLAlchemy's JSON type takes values, not text."""
    params = dict(row)
    for name in _JSON_COLUMNS:
        if isinstance(params.get(name), str):
            params[name] = orjson.loads(params[name])
    return params

"""The `responses` table (migration 0007): every statement the store runs, each bounded in
time (bounds.py). The writer's inserts go through a connection of their own
(gateway/store/inserts.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Executable, Row, Table, Text, bindparam, cast, delete, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from gateway.db.engine import Database
from gateway.db.models import ResponseRow
from gateway.store.inserts import Bounds, RowInserter
from gateway.store.responses import bounds
from gateway.store.responses.bounds import PURGE_TIMEOUT_S, bounded, timed_out
from gateway.store.responses.records import Link, ResponseRecord, Saved, with_output

_TABLE: Table = ResponseRow.__table__  # type: ignore[assignment]
_JSON_COLUMNS = ("response", "input_items", "output_items")
_COLUMNS = ("id", "owner", "previous_response_id", "root_id", "depth", "created_at", "model",
            "status", *_JSON_COLUMNS)


class _JSONText(TypeDecorator[Any]):
    """A JSON column bound from text the store serialised itself (orjson: several times
    faster than the json module SQLAlchemy would use, on the event loop)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


_INSERT = insert(_TABLE).values(
    {name: bindparam(f"{name}_json", type_=_JSONText()) for name in _JSON_COLUMNS})
# The items as their JSON text: a link keeps them so (see Link), no need to parse them.
_LINK_COLUMNS = (_TABLE.c.id, _TABLE.c.owner, _TABLE.c.previous_response_id, _TABLE.c.root_id,
                 _TABLE.c.depth, _TABLE.c.created_at,
                 cast(_TABLE.c.input_items, Text).label("input_json"),
                 cast(_TABLE.c.output_items, Text).label("output_json"))


# DB_TIMEOUT_S read at each insert (a test lowers it).
_INSERT_BOUNDS = Bounds(lambda: bounds.DB_TIMEOUT_S, lambda limit: timed_out("an insert", limit))


class ResponseTable:
    """Reads and writes of the `responses` table; what is expired is the caller's to judge."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._inserter = RowInserter.of(db, _TABLE, _COLUMNS, _JSON_COLUMNS, _INSERT_BOUNDS)

    async def link(self, response_id: str) -> tuple[datetime, Link] | None:
        query = select(*_LINK_COLUMNS).where(_TABLE.c.id == response_id)
        rows = await bounded(self._rows(query), "a read")
        return None if not rows else (rows[0].created_at, _link(rows[0]))

    async def conversation(self, root_id: str, owner: str,
                           below: int) -> list[tuple[str, Link]]:
        """The links of `owner`'s conversation `root_id` above depth `below` (one query)."""
        query = select(*_LINK_COLUMNS).where(_TABLE.c.root_id == root_id,
                                             _TABLE.c.owner == owner, _TABLE.c.depth < below)
        rows = await bounded(self._rows(query), "a read")
        return [(row.id, _link(row)) for row in rows]

    async def record(self, response_id: str) -> ResponseRecord | None:
        query = select(_TABLE).where(_TABLE.c.id == response_id)
        rows = await bounded(self._rows(query), "a read")
        if not rows:
            return None
        row = rows[0]
        return ResponseRecord(
            id=row.id, owner=row.owner, previous_response_id=row.previous_response_id,
            root_id=row.root_id, depth=row.depth, created_at=row.created_at, model=row.model,
            status=row.status, response=with_output(row.response, row.output_items),
            input_items=row.input_items, output_items=row.output_items)

    async def _rows(self, query: Executable) -> list[Row[Any]]:
        async with self.db.engine.connect() as connection:
            return list((await connection.execute(query)).all())

    async def insert(self, batch: list[Saved]) -> None:
        """One multi-row insert in one transaction; IntegrityError when any row exists,
        DataError when the database refuses one, StoreTimeout past DB_TIMEOUT_S."""
        if self._inserter is not None:
            await self._inserter.insert([_values(saved) for saved in batch])
            return
        await bounded(self._change(_INSERT, [_row(saved) for saved in batch]),
                      "an insert")  # in-memory SQLite

    async def delete(self, response_id: str, owner: str) -> None:
        query = delete(_TABLE).where(_TABLE.c.id == response_id, _TABLE.c.owner == owner)
        await bounded(self._change(query), "a delete")

    async def purge(self, cutoff: datetime) -> int:
        """Delete the rows made before `cutoff`; how many went."""
        return await bounded(self._change(delete(_TABLE).where(_TABLE.c.created_at < cutoff)),
                             "the retention purge", PURGE_TIMEOUT_S)

    async def _change(self, statement: Executable, rows: list[dict[str, Any]] | None = None
                      ) -> int:
        async with self.db.engine.begin() as connection:
            result = await connection.execute(statement, rows)
        return int(getattr(result, "rowcount", 0))

    async def close(self) -> None:
        if self._inserter is not None:
            await self._inserter.close()


def _row(saved: Saved) -> dict[str, Any]:
    return {"id": saved.id, "owner": saved.owner,
            "previous_response_id": saved.previous_response_id, "root_id": saved.root_id,
            "depth": saved.depth, "created_at": saved.created_at, "model": saved.model,
            "status": saved.status, "response_json": saved.response,
            "input_items_json": saved.input_items, "output_items_json": saved.output_items}


def _values(saved: Saved) -> tuple[Any, ...]:
    """`saved` in _COLUMNS' order."""
    return (saved.id, saved.owner, saved.previous_response_id, saved.root_id, saved.depth,
            saved.created_at, saved.model, saved.status, saved.response, saved.input_items,
            saved.output_items)


def _link(row: Row[Any]) -> Link:
    return Link(row.owner, row.previous_response_id, row.root_id, row.depth, row.created_at,
                row.input_json.encode(), row.output_json.encode())


"""What the response store holds, in its three shapes: a `ResponseRecord` (what retrieve
returns), a `Link` (what a chain needs of it) and a `Saved` row (what the writer inserts,
made to fit its columns: `key` and `fitted` say how)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import String

from gateway.db.models import ResponseRow

# The text columns' lengths (VARCHAR(n): Postgres refuses a longer value, and the row with it).
_LENGTHS: dict[str, int] = {column.name: column.type.length
                            for column in ResponseRow.__table__.columns
                            if isinstance(column.type, String) and column.type.length}


class Unstorable(ValueError):
    """A response whose key (id, owner, parent, root) does not fit its column."""


def key(value: str, column: str) -> str:
    """A key as the row keeps it, never altered: a cut id would name another response."""
    if len(value) > _LENGTHS[column] or "\x00" in value:
        raise Unstorable(f"its {column} is longer than {_LENGTHS[column]} characters or "
                         "holds a NUL")
    return value


def fitted(value: str, column: str) -> str:
    """A descriptive value (model, status) as its column takes it: without NULs (Postgres
    text cannot hold one), cut to the column's length. The Response object, kept whole as
    JSON, still has the value as it came."""
    return value.replace("\x00", "")[:_LENGTHS[column]]


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    id: str
    owner: str
    previous_response_id: str | None
    root_id: str
    depth: int
    created_at: datetime
    model: str
    status: str
    response: dict[str, Any]  # the Response object, as the client got it
    input_items: list[dict[str, Any]]
    output_items: list[dict[str, Any]]  # the Response's output


@dataclass(frozen=True, slots=True)
class Chain:
    """The conversation a new turn continues: its history and its place in it."""

    items: list[dict[str, Any]]  # every ancestor's input then output items, oldest first
    root_id: str
    depth: int  # the previous response's


class Link(NamedTuple):
    """One response as a chain needs it. Its items are kept as JSON (bytes hold no references,
    so the garbage collector never walks them: held as dicts, thousands of cached turns made
    every full collection long, and frequent). A NamedTuple, as immutable as a frozen
    dataclass and built in 0.24 µs rather than 0.83 (a frozen dataclass sets each field
    through object.__setattr__): every stored answer makes one on its request path."""

    owner: str
    previous: str | None
    root_id: str
    depth: int
    created_at: datetime
    input_json: bytes
    output_json: bytes

    @property
    def size(self) -> int:
        return len(self.input_json) + len(self.output_json)

    def items(self) -> list[Any]:
        return [*orjson.loads(self.input_json), *orjson.loads(self.output_json)]


@dataclass(frozen=True, slots=True)
class Saved:
    """A response saved and not yet written: as the writer will insert it (JSON text)."""

    id: str
    owner: str
    previous_response_id: str | None
    root_id: str
    depth: int
    created_at: datetime
    model: str
    status: str
    response: str
    input_items: str
    output_items: str

    @classmethod
    def of(cls, record: ResponseRecord) -> Saved:
        """`record` serialised once (orjson), as the row and the cached link both keep it,
        its text columns made to fit (`fitted`, `key`): Unstorable when a key cannot."""
        return cls(
            key(record.id, "id"), key(record.owner, "owner"),
            None if record.previous_response_id is None else
            key(record.previous_response_id, "previous_response_id"),
            key(record.root_id, "root_id"), record.depth, record.created_at,
            fitted(record.model, "model"), fitted(record.status, "status"),
            orjson.dumps(without_output(record.response)).decode(),
            orjson.dumps(record.input_items).decode(),
            orjson.dumps(record.output_items).decode())

    def link(self) -> Link:
        return Link(self.owner, self.previous_response_id, self.root_id, self.depth,
                    self.created_at, self.input_items.encode(), self.output_items.encode())

    def record(self) -> ResponseRecord:
        output = orjson.loads(self.output_items)
        return ResponseRecord(
            self.id, self.owner, self.previous_response_id, self.root_id, self.depth,
            self.created_at, self.model, self.status,
            with_output(orjson.loads(self.response), output),
            orjson.loads(self.input_items), output)


def without_output(response: dict[str, Any]) -> dict[str, Any]:
    """The Response as the `response` column keeps it: its output is the `output_items`
    column's (kept once, not twice)."""
    kept = response.copy()  # a C-level copy: 4x a comprehension's speed, same order
    kept.pop("output", None)
    return kept


def with_output(response: dict[str, Any], output: list[Any]) -> dict[str, Any]:
    return {**response, "output": output}

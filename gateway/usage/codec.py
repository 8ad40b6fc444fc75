"""A usage row as one JSON array: what the queue holds, the spool stores and a COPY reads.

A row is encoded once, by orjson, when its request finishes: its values in table order, the
JSON columns as JSON text, a decimal as a string. Without its brackets such an array is
already a line of Postgres's CSV format (COPY ... WITH (FORMAT csv, ESCAPE '\\', NULL 'null')):
strings in double quotes with `\\"` and `\\\\` escaped, unquoted numbers, true/false, null.
Only rows whose strings hold another JSON escape (a newline, a tab, a control character) are
rewritten as CSV when their batch is sent (`copy_data`). So the event loop spends about two
microseconds a row, mostly in C, and Postgres parses half as much per row as from a JSON document
(12.5 against 22 us a row, measured here): CPU it would take from the gateway on a shared host.
Queued bytes are invisible to the cycle collector; one row is one line, so the spool stays an
append-only file of lines.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from gateway.usage.table import request_logs

COLUMNS = tuple(column.name for column in request_logs.columns)
JSON_COLUMNS = ("metadata", "attempts", "hook_results")
_JSON_AT = tuple(COLUMNS.index(name) for name in JSON_COLUMNS)
_CREATED_AT, _COST = COLUMNS.index("created_at"), COLUMNS.index("cost_usd")
_SCALARS = (str, int, float, bool)
# A backslash that starts anything but \" or \\ (which CSV reads the same as JSON does). It
# also matches the second half of an escaped backslash ("\\n" is a backslash and an n): such
# a row merely takes the rewrite it did not need.
_OTHER_ESCAPE = re.compile(rb'\\[^"\\]')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # a JSON string: exact, and Postgres reads it into NUMERIC
    if isinstance(value, datetime):  # orjson writes these itself; the json fallback does not
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default)
    except orjson.JSONEncodeError:
        # Lone surrogates (from a JSON header's "\ud800") or an integer past 64 bits: keep the
        # row, with "?" for what UTF-8 cannot hold; the database refuses what it cannot store.
        text = json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8", "replace")


def encode(row: dict[str, Any]) -> bytes:
    """A row given by column name as one JSON array line. Columns it lacks are null."""
    return encode_values(list(map(row.get, COLUMNS)))


def encode_values(values: list[Any]) -> bytes:
    """A row's values, in table order (row.row_values), as one JSON array line. The JSON
    columns of `values` are replaced by their JSON text."""
    for at in _JSON_AT:
        if values[at] is not None:
            values[at] = _dumps(values[at]).decode()
    return _dumps(values)


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)  # an integer past 64 bits, which orjson does not read


def _row_values(line: bytes) -> list[Any]:
    """A row's values in table order, as its JSON array holds them."""
    values = _loads(line)
    if not isinstance(values, list) or len(values) != len(COLUMNS):
        raise ValueError(f"a usage row is an array of {len(COLUMNS)} values")
    return values


def decode(line: bytes) -> dict[str, Any]:
    """A row as Python values (SQLite's INSERT, and reading rows back)."""
    values = _row_values(line)
    for at in _JSON_AT:
        if values[at] is not None:
            values[at] = orjson.loads(values[at])
    if values[_COST] is not None:
        values[_COST] = Decimal(values[_COST])
    if values[_CREATED_AT] is not None:
        values[_CREATED_AT] = datetime.fromisoformat(values[_CREATED_AT])
    return dict(zip(COLUMNS, values, strict=True))


def sqlite_values(line: bytes) -> tuple[Any, ...]:
    """A row's values in table order for an SQLite insert of its own (store/inserts.py): the
    JSON columns stay the JSON text they were encoded as (checked: an object or an array a
    read can parse), the time is a datetime again (its column binds it), the cost stays its
    decimal text (SQLite's NUMERIC binds it as a float, as it bound the Decimal). A value
    no column takes (a list where text goes, JSON a read could not parse: a spooled line of
    another version, or NaN from the fallback encoder) is a ValueError: that row is refused
    alone, where sqlite3 would have failed the batch as if the database were out."""
    values = _row_values(line)
    for at, value in enumerate(values):
        if value is None:
            continue
        if at in _JSON_AT:
            text = value if isinstance(value, str) else _dumps(value).decode()
            if not isinstance(orjson.loads(text), dict | list):
                raise ValueError(f"usage column {COLUMNS[at]} holds JSON of another kind")
            values[at] = text
        elif type(value) not in _SCALARS:
            raise ValueError(f"usage column {COLUMNS[at]} holds a {type(value).__name__}")
    if values[_CREATED_AT] is not None:
        values[_CREATED_AT] = datetime.fromisoformat(values[_CREATED_AT])
    return tuple(values)


def is_row(line: bytes) -> bool:
    """Whether a line is a whole row (a crash mid-write leaves one cut short)."""
    return line.startswith(b"[") and line.endswith(b"]")


def upgrade(line: bytes) -> bytes:
    """A spooled line as this version writes it. Older versions spooled rows as JSON objects,
    some with the JSON columns as text, or as arrays without the columns added since (at the
    end of the table: hook_results and hooks_failed, migration 0006; dialect, 0008), which
    read as null."""
    line = line.rstrip(b"\n")
    if not line.startswith(b"{"):
        return _padded(line) if is_row(line) else line
    row = orjson.loads(line)
    for name in JSON_COLUMNS:
        if isinstance(row.get(name), str):
            row[name] = orjson.loads(row[name])
    return encode(row)  # created_at and cost_usd stay the strings they were written as


def _padded(line: bytes) -> bytes:
    try:
        values = _loads(line)
    except ValueError:  # cut short or corrupt: the spool sets it aside as it is
        return line
    if not isinstance(values, list) or len(values) >= len(COLUMNS):
        return line
    return _dumps(values + [None] * (len(COLUMNS) - len(values)))


def copy_data(rows: list[bytes]) -> bytes:
    """The rows as the data of one CSV COPY: each line without its brackets, rewritten first
    if a string in it holds a JSON escape CSV does not share."""
    return b"".join([_csv_line(row) if _OTHER_ESCAPE.search(row) else row[1:-1] + b"\n"
                     for row in rows])


def _csv_line(row: bytes) -> bytes:
    fields = []
    for value in _loads(row):
        if isinstance(value, str):  # raw newlines are fine within quotes
            value = value.replace("\\", "\\\\").replace('"', '\\"')
            fields.append(f'"{value}"')
        else:
            fields.append(json.dumps(value))
    return (",".join(fields) + "\n").encode("utf-8", "replace")

"""The console's reads of `request_logs`: a filtered, keyset-paginated list and one row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gateway.db.engine import Database
from gateway.db.models import ApiKeyRow, VirtualKeyRow
from gateway.errors import InvalidRequest, NotFound
from gateway.usage.queries import LogFilters as UsageFilters
from gateway.usage.table import request_logs as logs

PAGE_SIZE = 50
# The list never loads bodies or hook results (it marks failures by `hooks_failed`); the
# detail view shows everything but bodies unless they were logged.
_LIST_COLUMNS = [c for c in logs.c
                 if c.name not in ("request_body", "response_body", "hook_results")]


@dataclass(frozen=True, slots=True)
class LogFilters:
    provider: str = ""
    model: str = ""
    status: str = ""  # "ok", "error", or a code like "429"
    virtual_key: str = ""  # id or slug
    api_key: str = ""  # id
    trace_id: str = ""
    metadata: str = ""  # key=value
    hooks_failed: str = ""  # "true": a guardrail failed; "false": none failed
    dialect: str = ""  # chat, messages, responses
    before: str = ""  # cursor: "<iso created_at>|<id>"

    @classmethod
    def from_query(cls, query: Any) -> LogFilters:
        return cls(**{name: str(query.get(name, "")).strip()
                      for name in cls.__dataclass_fields__})


def _conditions(filters: LogFilters, vk_id: str | None) -> list[Any]:
    """The usage API's filters, plus what the console adds: ok/error classes, key slugs."""
    status = int(filters.status) if filters.status.isdigit() else None
    if filters.status and status is None and filters.status not in ("ok", "error"):
        raise InvalidRequest("status must be ok, error or an HTTP status code", param="status")
    metadata: dict[str, str] = {}
    if filters.metadata:
        key, sep, value = filters.metadata.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest("metadata filter must look like key=value", param="metadata")
        metadata[key.strip()] = value.strip()
    if filters.dialect not in ("", "chat", "messages", "responses"):
        raise InvalidRequest("dialect must be chat, messages or responses", param="dialect")
    if filters.hooks_failed not in ("", "true", "false"):
        raise InvalidRequest("hooks_failed must be true or false", param="hooks_failed")
    where: list[Any] = UsageFilters(
        provider=filters.provider or None, model=filters.model or None, status=status,
        api_key_id=filters.api_key or None, trace_id=filters.trace_id or None,
        virtual_key_id=(vk_id or filters.virtual_key) or None, metadata=metadata,
        hooks_failed={"true": True, "false": False}.get(filters.hooks_failed),
        dialect=filters.dialect or None).clauses()
    if filters.status == "ok":
        where.append(logs.c.status_code < 400)
    elif filters.status == "error":
        where.append(sa.or_(logs.c.status_code >= 400, logs.c.status_code.is_(None)))
    if filters.before:
        where.append(_before(filters.before))
    return where


def _before(cursor: str) -> Any:
    stamp, _, row_id = cursor.partition("|")
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        raise InvalidRequest("the page cursor is malformed", param="before") from None
    if moment.tzinfo is None:
        raise InvalidRequest("the page cursor is malformed", param="before")
    return sa.or_(logs.c.created_at < moment,
                  sa.and_(logs.c.created_at == moment, logs.c.id < row_id))


async def list_logs(db: Database, filters: LogFilters) -> tuple[list[dict[str, Any]], str | None]:
    """A page of rows, newest first, and the cursor of the next page (None on the last)."""
    async with db.engine.connect() as conn:
        vk_id = None
        if filters.virtual_key:
            vk_id = await conn.scalar(sa.select(VirtualKeyRow.id).where(sa.or_(
                VirtualKeyRow.id == filters.virtual_key,
                VirtualKeyRow.slug == filters.virtual_key)))
        query = (sa.select(*_LIST_COLUMNS).where(*_conditions(filters, vk_id))
                 .order_by(logs.c.created_at.desc(), logs.c.id.desc()).limit(PAGE_SIZE + 1))
        rows = [dict(r._mapping) for r in await conn.execute(query)]
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    cursor = f"{rows[-1]['created_at'].isoformat()}|{rows[-1]['id']}" if more else None
    return rows, cursor


async def get_log(db: Database, log_id: str) -> dict[str, Any]:
    async with db.engine.connect() as conn:
        row = (await conn.execute(sa.select(logs).where(logs.c.id == log_id).limit(1))).first()
    if row is None:
        raise NotFound(f"no request log '{log_id}'", code="log_not_found")
    return dict(row._mapping)


@dataclass(frozen=True, slots=True)
class KeyNames:
    """Names to show for the key ids stored in log rows."""

    virtual_keys: dict[str, str]
    api_keys: dict[str, str]

    def virtual_key(self, key_id: str | None) -> str:
        return "" if key_id is None else self.virtual_keys.get(key_id, key_id[:8])

    def api_key(self, key_id: str | None) -> str:
        return "" if key_id is None else self.api_keys.get(key_id, key_id[:8])


async def key_names(db: Database) -> KeyNames:
    async with db.engine.connect() as conn:
        vks = await conn.execute(sa.select(VirtualKeyRow.id, VirtualKeyRow.slug))
        aks = await conn.execute(sa.select(ApiKeyRow.id, ApiKeyRow.name))
        return KeyNames({r.id: r.slug for r in vks}, {r.id: r.name for r in aks})


async def distinct_values(db: Database, column: str, since: datetime,
                          limit: int = 200) -> list[str]:
    """Values seen in a column since a moment, for the filter form's choices."""
    col = logs.c[column]
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.select(col).where(col.is_not(None),
                                                       logs.c.created_at >= since).distinct()
                                  .order_by(col).limit(limit))
        return [str(r[0]) for r in rows]

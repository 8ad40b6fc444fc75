"""Reading the usage log: filtered, cursor-paged listings, one row, and grouped analytics."""

from __future__ import annotations

import base64
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from gateway.db.engine import Database
from gateway.usage.table import request_logs as logs

GROUPS = ("provider", "model", "virtual_key", "api_key", "day")
_GROUP_COLUMNS = {"provider": logs.c.provider, "model": logs.c.model,
                  "virtual_key": logs.c.virtual_key_id, "api_key": logs.c.api_key_id}


@dataclass(slots=True)
class LogFilters:
    since: datetime | None = None
    until: datetime | None = None
    provider: str | None = None
    model: str | None = None
    status: int | None = None
    api_key_id: str | None = None
    virtual_key_id: str | None = None
    trace_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    hooks_failed: bool | None = None  # True: a guardrail failed; False: none ran or all passed
    dialect: str | None = None  # chat, messages, responses

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if self.since is not None:
            where.append(logs.c.created_at >= self.since)
        if self.until is not None:
            where.append(logs.c.created_at < self.until)
        for column, value in ((logs.c.provider, self.provider), (logs.c.model, self.model),
                              (logs.c.status_code, self.status),
                              (logs.c.api_key_id, self.api_key_id),
                              (logs.c.virtual_key_id, self.virtual_key_id),
                              (logs.c.trace_id, self.trace_id),
                              (logs.c.dialect, self.dialect)):
            if value is not None:
                where.append(column == value)
        for key, value in self.metadata.items():
            where.append(logs.c.metadata[key].as_string() == value)
        if self.hooks_failed:  # `= true`, as the partial index ix_request_logs_hooks_failed
            where.append(logs.c.hooks_failed == sa.true())
        elif self.hooks_failed is not None:
            where.append(sa.or_(logs.c.hooks_failed == sa.false(), logs.c.hooks_failed.is_(None)))
        return where


def encode_cursor(created_at: datetime, request_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{request_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError for a cursor this API did not make."""
    created, _, request_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    if not request_id:
        raise ValueError("not a cursor")
    return datetime.fromisoformat(created), request_id


def as_json(row: Any) -> dict[str, Any]:
    # Column names can be str subclasses (quoted_name), which orjson refuses as keys.
    data: dict[str, Any] = {str(key): value for key, value in row._mapping.items()}
    data["created_at"] = data["created_at"].isoformat()
    if data["cost_usd"] is not None:
        data["cost_usd"] = str(data["cost_usd"])
    return data


async def list_logs(db: Database, filters: LogFilters, cursor: str | None,
                    limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; returns the page and the cursor of the next one (None at the end)."""
    query = sa.select(logs).where(*filters.clauses())
    if cursor is not None:
        created_at, request_id = decode_cursor(cursor)
        query = query.where(sa.or_(logs.c.created_at < created_at, sa.and_(
            logs.c.created_at == created_at, logs.c.id < request_id)))
    query = query.order_by(logs.c.created_at.desc(), logs.c.id.desc()).limit(limit + 1)
    async with db.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return [as_json(row) for row in page], next_cursor


async def get_log(db: Database, request_id: str) -> dict[str, Any] | None:
    async with db.engine.connect() as connection:
        row = (await connection.execute(
            sa.select(logs).where(logs.c.id == request_id).limit(1))).first()
    return None if row is None else as_json(row)


def _group_expression(group_by: str, dialect: str) -> sa.ColumnElement[Any]:
    if group_by != "day":
        return _GROUP_COLUMNS[group_by]
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", logs.c.created_at), "YYYY-MM-DD")
    return sa.func.substr(logs.c.created_at, 1, 10)  # SQLite stores ISO text, UTC


async def analytics(db: Database, group_by: str, filters: LogFilters) -> dict[str, Any]:
    """Requests, errors, tokens, cost, p50 and p95 latency per group, plus the totals."""
    group = _group_expression(group_by, db.engine.dialect.name).label("group")
    query = sa.select(group, logs.c.status_code, logs.c.prompt_tokens,
                      logs.c.completion_tokens, logs.c.total_tokens, logs.c.cost_usd,
                      logs.c.latency_ms).where(*filters.clauses())
    async with db.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    groups: dict[Any, list[Any]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    data = [{"group": key, **_summary(members)} for key, members in sorted(
        groups.items(), key=lambda item: (item[0] is None, str(item[0])))]
    return {"object": "analytics", "group_by": group_by, "data": data,
            "totals": _summary(rows)}


def _summary(rows: Sequence[Any]) -> dict[str, Any]:
    latencies = sorted(row.latency_ms for row in rows)
    cost = sum((row.cost_usd for row in rows if row.cost_usd is not None), Decimal(0))
    return {
        "requests": len(rows),
        "errors": sum(1 for row in rows if (row.status_code or 0) >= 400),
        "prompt_tokens": sum(row.prompt_tokens or 0 for row in rows),
        "completion_tokens": sum(row.completion_tokens or 0 for row in rows),
        "total_tokens": sum(row.total_tokens or 0 for row in rows),
        "cost_usd": str(cost),
        "p50_latency_ms": _percentile(latencies, 50),
        "p95_latency_ms": _percentile(latencies, 95),
    }


def _percentile(ordered: list[float], percent: int) -> float | None:
    if not ordered:
        return None
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[percent - 1]

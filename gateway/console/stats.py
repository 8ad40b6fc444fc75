"""The overview's numbers: requests, errors, tokens and cost per time bucket, split by a
dimension, with latency percentiles. Rows are read once and summed in Python, which works the
same on SQLite and Postgres; a window holding more than MAX_ROWS requests is summarised from
its newest MAX_ROWS (the page says so)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from gateway.db.engine import Database
from gateway.usage.table import request_logs as logs

Bucket = Literal["hour", "day"]
Split = Literal["provider", "model", "virtual_key_id"]
MAX_ROWS = 50_000
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
          "30d": timedelta(days=30)}
_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
_COLUMNS = (logs.c.created_at, logs.c.provider, logs.c.model, logs.c.virtual_key_id,
            logs.c.status_code, logs.c.total_tokens, logs.c.cost_usd, logs.c.latency_ms,
            logs.c.ttfb_ms, logs.c.hooks_failed)


def percentile(values: list[float], p: int) -> float | None:
    """Interpolated like the analytics API's (`statistics.quantiles`, inclusive), so the
    console and /admin/analytics agree; None for no values."""
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@dataclass(slots=True)
class Totals:
    requests: int = 0
    errors: int = 0
    guardrail_failures: int = 0  # requests on which a guardrail failed (denied or flagged)
    tokens: int = 0
    cost: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)

    def add(self, row: Any) -> None:
        self.requests += 1
        self.errors += row.status_code is None or row.status_code >= 400
        self.guardrail_failures += bool(row.hooks_failed)
        self.tokens += row.total_tokens or 0
        self.cost += float(row.cost_usd or 0)
        self.latencies.append(row.latency_ms)
        if row.ttfb_ms is not None:
            self.ttfbs.append(row.ttfb_ms)

    def latency(self, p: int) -> float | None:
        return percentile(self.latencies, p)

    def ttfb(self, p: int) -> float | None:
        return percentile(self.ttfbs, p)


@dataclass(slots=True)
class Overview:
    since: datetime
    until: datetime
    bucket: Bucket
    split: Split
    buckets: list[datetime]
    total: Totals
    groups: dict[str, Totals]  # split value -> totals, most requests first
    # metric -> split value -> one number per bucket
    series: dict[str, dict[str, list[float]]]
    truncated: bool


def bucket_starts(since: datetime, until: datetime, bucket: Bucket) -> list[datetime]:
    start = since.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        start = start.replace(hour=0)
    starts: list[datetime] = []
    while start < until:
        starts.append(start)
        start += _STEP[bucket]
    return starts


def _bucket_of(moment: datetime, bucket: Bucket) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


async def overview(db: Database, since: datetime, until: datetime, bucket: Bucket,
                   split: Split) -> Overview:
    query = (sa.select(*_COLUMNS)
             .where(logs.c.created_at >= since, logs.c.created_at < until)
             .order_by(logs.c.created_at.desc()).limit(MAX_ROWS + 1))
    async with db.engine.connect() as conn:
        rows = list(await conn.execute(query))
    truncated = len(rows) > MAX_ROWS
    starts = bucket_starts(since, until, bucket)
    index = {start: i for i, start in enumerate(starts)}
    total, groups = Totals(), defaultdict[str, Totals](Totals)
    metrics = ("requests", "errors", "tokens", "cost")
    series: dict[str, dict[str, list[float]]] = {m: {} for m in metrics}
    for row in rows[:MAX_ROWS]:
        group = getattr(row, split) or "(none)"
        total.add(row)
        groups[group].add(row)
        slot = index.get(_bucket_of(row.created_at.astimezone(UTC), bucket))
        if slot is None:
            continue
        values = (1, row.status_code is None or row.status_code >= 400, row.total_tokens or 0,
                  float(row.cost_usd or 0))
        for metric, value in zip(metrics, values, strict=True):
            series[metric].setdefault(group, [0.0] * len(starts))[slot] += value
    ordered = dict(sorted(groups.items(), key=lambda item: (-item[1].requests, item[0])))
    return Overview(since, until, bucket, split, starts, total, ordered, series, truncated)

"""The overview page: traffic, errors, tokens and cost over time, split one way, with charts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from gateway.console import charts, stats
from gateway.console.log_query import key_names
from gateway.console.web import page, render, store_of

SPLITS: dict[str, stats.Split] = {"provider": "provider", "model": "model",
                                  "virtual_key": "virtual_key_id"}
_FORMATS = {"requests": lambda v: f"{v:,.0f}", "errors": lambda v: f"{v:,.0f}",
            "tokens": lambda v: f"{v:,.0f}", "cost": charts.money}
_TITLES = {"requests": "Requests", "errors": "Errors", "tokens": "Tokens", "cost": "Cost (USD)"}


def _choice(value: str | None, allowed: Any, default: str) -> str:
    return value if value in allowed else default


async def overview_page(request: Request) -> Response:
    query = request.query_params
    span = _choice(query.get("range"), stats.RANGES, "24h")
    default_bucket = "hour" if stats.RANGES[span].days < 2 else "day"
    bucket: stats.Bucket = "day" if _choice(query.get("bucket"), ("hour", "day"),
                                            default_bucket) == "day" else "hour"
    split_name = _choice(query.get("split"), SPLITS, "provider")
    until = datetime.now(UTC)
    db = store_of(request).db
    data = await stats.overview(db, until - stats.RANGES[span], until, bucket,
                                SPLITS[split_name])
    names = await key_names(db)

    def label(group: str) -> str:
        return names.virtual_key(group) if split_name == "virtual_key" and group != "(none)" \
            else group

    groups = {label(name): totals for name, totals in data.groups.items()}
    palette = charts.colours([*groups, "other"])
    drawn: dict[str, Markup] = {}
    for metric, by_group in data.series.items():
        series = charts.top_series({label(k): v for k, v in by_group.items()})
        drawn[metric] = charts.stacked_bars(
            f"{_TITLES[metric]} per {bucket}", data.buckets, series, palette,
            _FORMATS[metric], bucket == "hour")
    return render(request, "overview.html", data=data, groups=groups, charts=drawn,
                  titles=_TITLES, palette=palette, span=span, bucket=bucket,
                  split=split_name, ranges=list(stats.RANGES), splits=list(SPLITS),
                  max_rows=stats.MAX_ROWS, money=charts.money)


routes = [page("/", overview_page)]

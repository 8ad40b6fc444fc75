"""The logs pages: a filterable, paginated table of requests and one request in detail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from gateway.console.log_query import (
    LogFilters,
    distinct_values,
    get_log,
    key_names,
    list_logs,
)
from gateway.console.web import page, render, store_of


async def logs_page(request: Request) -> Response:
    filters = LogFilters.from_query(request.query_params)
    db = store_of(request).db
    rows, cursor = await list_logs(db, filters)
    since = datetime.now(UTC) - timedelta(days=7)
    choices = {"provider": await distinct_values(db, "provider", since),
               "model": await distinct_values(db, "model", since)}
    kept = {k: v for k, v in vars_of(filters).items() if v and k != "before"}
    next_url = f"?{urlencode({**kept, 'before': cursor})}" if cursor else None
    return render(request, "logs.html", rows=rows, filters=filters, choices=choices,
                  names=await key_names(db), next_url=next_url,
                  first_url=f"?{urlencode(kept)}" if filters.before else None)


def vars_of(filters: LogFilters) -> dict[str, str]:
    return {name: getattr(filters, name) for name in LogFilters.__dataclass_fields__}


async def log_detail(request: Request) -> Response:
    db = store_of(request).db
    row = await get_log(db, request.path_params["log_id"])
    return render(request, "log_detail.html", row=row, names=await key_names(db))


routes = [page("/logs", logs_page), page("/logs/{log_id}", log_detail)]

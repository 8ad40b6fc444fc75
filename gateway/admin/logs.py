"""Admin routes for the usage log: listing with filters, one request, grouped analytics."""

from __future__ import annotations

from datetime import datetime

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin.http import admin_store, json_response, route
from gateway.db.engine import Database
from gateway.errors import InvalidRequest, NotFound
from gateway.usage import queries

_MAX_LIMIT = 500


def _database(request: Request) -> Database:
    db: Database | None = request.app.state.services.db
    if db is None:
        raise NotFound("the gateway has no database, so no usage log")
    return db


def _time(params: QueryParams, name: str) -> datetime | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"'{name}' must be an ISO 8601 time", param=name) from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"'{name}' must carry a time zone (e.g. Z)", param=name)
    return moment


def _int(params: QueryParams, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise InvalidRequest(f"'{name}' must be a whole number", param=name)
    return int(value)


def _bool(params: QueryParams, name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise InvalidRequest(f"'{name}' must be true or false", param=name)
    return value.lower() == "true"


def filters_from(params: QueryParams) -> queries.LogFilters:
    """Filters from query parameters; `metadata.<key>=<value>` may repeat."""
    return queries.LogFilters(
        since=_time(params, "since"), until=_time(params, "until"),
        provider=params.get("provider"), model=params.get("model"),
        status=_int(params, "status"), api_key_id=params.get("api_key_id"),
        virtual_key_id=params.get("virtual_key_id"), trace_id=params.get("trace_id"),
        metadata={k.removeprefix("metadata."): v for k, v in params.multi_items()
                  if k.startswith("metadata.")},
        hooks_failed=_bool(params, "hooks_failed"),
        dialect=_dialect(params),
    )


_DIALECTS = ("chat", "messages", "responses")


def _dialect(params: QueryParams) -> str | None:
    value = params.get("dialect")
    if value is not None and value not in _DIALECTS:
        raise InvalidRequest(f"dialect must be one of {', '.join(_DIALECTS)}", param="dialect")
    return value


async def list_logs(request: Request) -> Response:
    await admin_store(request)
    params = request.query_params
    limit = min(_int(params, "limit", 50) or 50, _MAX_LIMIT)
    try:
        page, cursor = await queries.list_logs(_database(request), filters_from(params),
                                               params.get("cursor"), limit)
    except ValueError:
        raise InvalidRequest("'cursor' is not one this API returned", param="cursor") from None
    return json_response({"object": "list", "data": page, "next_cursor": cursor})


async def read_log(request: Request) -> Response:
    await admin_store(request)
    row = await queries.get_log(_database(request), request.path_params["request_id"])
    if row is None:
        raise NotFound(f"no usage record for request '{request.path_params['request_id']}' "
                       "(records reach the database within a second or two)")
    return json_response(row)


async def analytics(request: Request) -> Response:
    await admin_store(request)
    group_by = request.query_params.get("group_by", "provider")
    if group_by not in queries.GROUPS:
        raise InvalidRequest(f"'group_by' must be one of {', '.join(queries.GROUPS)}",
                             param="group_by")
    result = await queries.analytics(_database(request), group_by,
                                     filters_from(request.query_params))
    return json_response(result)


def routes(prefix: str) -> list[Route]:
    return [
        route(f"{prefix}/logs", list_logs, ["GET"]),
        route(f"{prefix}/logs/{{request_id}}", read_log, ["GET"]),
        route(f"{prefix}/analytics", analytics, ["GET"]),
    ]

"""Admin routes for gateway API keys."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin.http import admin_store, json_body, json_response, listing, route
from gateway.store import api_keys


async def create(request: Request) -> Response:
    store = await admin_store(request)
    row, key = await api_keys.create(store, await json_body(request))
    # The only time the key itself is shown.
    return json_response({"id": row.id, "key": key, "object": "api-key"}, 201)


async def list_all(request: Request) -> Response:
    store = await admin_store(request)
    return listing([api_keys.view(row) for row in await api_keys.list_all(store)])


async def read(request: Request) -> Response:
    store = await admin_store(request)
    return json_response(api_keys.view(await api_keys.get(store, request.path_params["ref"])))


async def update(request: Request) -> Response:
    store = await admin_store(request)
    row = await api_keys.update(store, request.path_params["ref"], await json_body(request))
    return json_response(api_keys.view(row))


async def revoke(request: Request) -> Response:
    store = await admin_store(request)
    row = await api_keys.revoke(store, request.path_params["ref"])
    return json_response({"success": True, "data": api_keys.view(row)})


def routes(prefix: str) -> list[Route]:
    base = f"{prefix}/api-keys"
    return [
        route(base, create, ["POST"]),
        route(base, list_all, ["GET"]),
        # The portkey-ai SDK posts to /api-keys/{type}/{sub-type}; both are ignored here.
        route(base + "/{kind}/{sub_kind}", create, ["POST"]),
        route(base + "/{ref}", read, ["GET"]),
        route(base + "/{ref}", update, ["PUT", "PATCH"]),
        route(base + "/{ref}", revoke, ["DELETE"]),
    ]

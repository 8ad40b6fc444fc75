"""Admin routes for virtual keys."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin.http import admin_store, json_body, json_response, listing, route
from gateway.store import virtual_keys


async def create(request: Request) -> Response:
    store = await admin_store(request)
    row = await virtual_keys.create(store, await json_body(request))
    return json_response({"id": row.id, "slug": row.slug, "object": "virtual-key"}, 201)


async def list_all(request: Request) -> Response:
    store = await admin_store(request)
    return listing([virtual_keys.view(row) for row in await virtual_keys.list_all(store)])


async def read(request: Request) -> Response:
    store = await admin_store(request)
    row = await virtual_keys.get(store, request.path_params["ref"])
    return json_response(virtual_keys.view(row))


async def update(request: Request) -> Response:
    store = await admin_store(request)
    row = await virtual_keys.update(store, request.path_params["ref"], await json_body(request))
    return json_response(virtual_keys.view(row))


async def revoke(request: Request) -> Response:
    store = await admin_store(request)
    row = await virtual_keys.revoke(store, request.path_params["ref"])
    return json_response({"success": True, "data": virtual_keys.view(row)})


def routes(prefix: str) -> list[Route]:
    base = f"{prefix}/virtual-keys"
    return [
        route(base, create, ["POST"]),
        route(base, list_all, ["GET"]),
        route(base + "/{ref}", read, ["GET"]),
        route(base + "/{ref}", update, ["PUT", "PATCH"]),
        route(base + "/{ref}", revoke, ["DELETE"]),
    ]

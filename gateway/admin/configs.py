"""Admin routes for saved configs and their versions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin.http import admin_store, json_body, json_response, listing, route
from gateway.store import configs


async def create(request: Request) -> Response:
    store = await admin_store(request)
    row = await configs.create(store, await json_body(request))
    return json_response({"id": row.id, "slug": row.slug, "version_id": row.version_id,
                          "object": "config"}, 201)


async def list_all(request: Request) -> Response:
    store = await admin_store(request)
    return listing([configs.view(row) for row in await configs.list_all(store)])


async def read(request: Request) -> Response:
    store = await admin_store(request)
    return json_response(configs.view(await configs.get(store, request.path_params["ref"])))


async def update(request: Request) -> Response:
    store = await admin_store(request)
    row = await configs.update(store, request.path_params["ref"], await json_body(request))
    return json_response(configs.view(row))


async def delete(request: Request) -> Response:
    store = await admin_store(request)
    row = await configs.delete(store, request.path_params["ref"])
    return json_response({"success": True, "data": configs.view(row)})


async def versions(request: Request) -> Response:
    store = await admin_store(request)
    rows = await configs.versions(store, request.path_params["ref"])
    return listing([configs.version_view(row) for row in rows])


def routes(prefix: str) -> list[Route]:
    base = f"{prefix}/configs"
    return [
        route(base, create, ["POST"]),
        route(base, list_all, ["GET"]),
        route(base + "/{ref}", read, ["GET"]),
        route(base + "/{ref}", update, ["PUT", "PATCH"]),
        route(base + "/{ref}", delete, ["DELETE"]),
        route(base + "/{ref}/versions", versions, ["GET"]),
    ]

"""Admin routes for prompt templates, their versions and which one is published."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin.http import admin_store, json_body, json_response, listing, route
from gateway.store import prompts


async def create(request: Request) -> Response:
    store = await admin_store(request)
    row, version = await prompts.create(store, await json_body(request))
    return json_response({"id": row.id, "slug": row.slug, "version_id": version.id,
                          "version": version.version, "object": "prompt"}, 201)


async def list_all(request: Request) -> Response:
    store = await admin_store(request)
    return listing([prompts.view(row) for row in await prompts.list_all(store)])


async def read(request: Request) -> Response:
    store = await admin_store(request)
    return json_response(prompts.view(*await prompts.get(store, request.path_params["ref"])))


async def update(request: Request) -> Response:
    store = await admin_store(request)
    row, version = await prompts.update(store, request.path_params["ref"],
                                        await json_body(request))
    return json_response(prompts.view(row, version))


async def publish(request: Request) -> Response:
    store = await admin_store(request)
    row, version = await prompts.publish(store, request.path_params["ref"],
                                         await json_body(request))
    return json_response(prompts.view(row, version))


async def delete(request: Request) -> Response:
    store = await admin_store(request)
    row = await prompts.delete(store, request.path_params["ref"])
    return json_response({"success": True, "data": prompts.view(row)})


async def versions(request: Request) -> Response:
    store = await admin_store(request)
    row, rows = await prompts.versions(store, request.path_params["ref"])
    return listing([prompts.version_view(version, row) for version in rows])


async def version(request: Request) -> Response:
    store = await admin_store(request)
    row, found = await prompts.version(store, request.path_params["ref"],
                                       request.path_params["version"])
    return json_response(prompts.version_view(found, row))


def routes(prefix: str) -> list[Route]:
    base = f"{prefix}/prompts"
    return [
        route(base, create, ["POST"]),
        route(base, list_all, ["GET"]),
        route(base + "/{ref}", read, ["GET"]),
        route(base + "/{ref}", update, ["PUT", "PATCH"]),
        route(base + "/{ref}", delete, ["DELETE"]),
        route(base + "/{ref}/versions", versions, ["GET"]),
        route(base + "/{ref}/versions/{version}", version, ["GET"]),
        route(base + "/{ref}/publish", publish, ["POST", "PUT"]),
        # The portkey-ai SDK's prompts.publish(slug, version=N).
        route(base + "/{ref}/makeDefault", publish, ["POST", "PUT"]),
    ]

"""Prompts: list, view every version, and render a version with sample variables."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.console.configs import pretty
from gateway.console.web import form_of, page, render, store_of
from gateway.errors import InvalidRequest
from gateway.store import prompts
from gateway.store.templates import Template


async def list_page(request: Request) -> Response:
    return render(request, "prompts.html", rows=await prompts.list_all(store_of(request)))


async def view_page(request: Request) -> Response:
    """A prompt's versions; with a form posted, one version rendered with its variables."""
    store = store_of(request)
    row, versions = await prompts.versions(store, request.path_params["ref"])
    form = form_of(request)
    chosen = form.get("version") or str(row.published_version or row.latest_version)
    variables_text = form.get("variables", "{}")
    rendered, problem, status = None, None, 200
    if request.method == "POST":
        try:
            _, version = await prompts.version(store, row.id, chosen)
            try:
                variables = orjson.loads(variables_text or "{}")
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"variables are not valid JSON: {exc}") from None
            rendered = pretty(Template.compile(version.messages).render(variables))
        except InvalidRequest as exc:
            problem, status = exc.message, 400
    return render(request, "prompt_view.html", status, row=row,
                  versions=[(v, pretty(v.messages)) for v in reversed(versions)],
                  chosen=chosen, variables=variables_text, rendered=rendered, problem=problem)


routes = [
    page("/prompts", list_page),
    page("/prompts/{ref}", view_page, ("GET", "POST")),
]

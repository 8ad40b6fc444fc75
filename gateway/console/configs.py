"""Saved configs: list, view with versions, create and edit with the problems shown inline."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.console.web import form_of, page, render, store_of
from gateway.errors import GatewayError, InvalidRequest
from gateway.routing.config import validate_config
from gateway.store import configs

_EXAMPLE = {"strategy": {"mode": "fallback"},
            "targets": [{"virtual_key": "openai-prod"}, {"virtual_key": "anyscale-prod"}]}


def pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def parse_config(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The config and no problems, or None and every problem found (JSON, schema, semantics)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return None, [f"not valid JSON: {exc}"]
    try:
        validate_config(data)
    except InvalidRequest as exc:
        return None, list(exc.extra.get("errors") or [exc.message])
    return data, []


async def list_page(request: Request) -> Response:
    return render(request, "configs.html", rows=await configs.list_all(store_of(request)))


async def new_page(request: Request) -> Response:
    return render(request, "config_edit.html", row=None, name="", text=pretty(_EXAMPLE),
                  problems=[])


async def view_page(request: Request) -> Response:
    store = store_of(request)
    row = await configs.get(store, request.path_params["ref"])
    versions = await configs.versions(store, row.id)
    return render(request, "config_view.html", row=row, text=pretty(row.config),
                  versions=[(v, pretty(v.config)) for v in reversed(versions)])


async def edit_page(request: Request) -> Response:
    row = await configs.get(store_of(request), request.path_params["ref"])
    return render(request, "config_edit.html", row=row, name=row.name,
                  text=pretty(row.config), problems=[])


async def save(request: Request) -> Response:
    """Create (no ref) or edit: invalid input re-renders the form with every problem."""
    form, store = form_of(request), store_of(request)
    ref = request.path_params.get("ref")
    row = await configs.get(store, ref) if ref else None
    name, text = form.get("name", "").strip(), form.get("config", "")
    config, problems = parse_config(text)
    if not name:
        problems.insert(0, "name: is required")
    if config is not None and not problems:
        try:
            if row is None:
                row = await configs.create(store, {"name": name, "config": config})
            else:
                row = await configs.update(store, row.id, {"name": name, "config": config})
            return RedirectResponse(f"/console/configs/{row.slug}", 303)
        except GatewayError as exc:
            problems = [exc.message]
    return render(request, "config_edit.html", 400, row=row, name=name, text=text,
                  problems=problems)


routes = [
    page("/configs", list_page),
    page("/configs", save, ("POST",)),
    page("/configs/new", new_page),
    page("/configs/{ref}", view_page),
    page("/configs/{ref}/edit", edit_page),
    page("/configs/{ref}/edit", save, ("POST",)),
]

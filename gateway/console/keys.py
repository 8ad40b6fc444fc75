"""Virtual keys and API keys: list with limits and current usage, create, revoke."""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.console.limit_usage import usage_of
from gateway.console.web import form_of, page, render, services_of, store_of
from gateway.errors import GatewayError
from gateway.store import api_keys, virtual_keys
from providers import REGISTRY

_PERIODS = ("", "daily", "weekly", "monthly")


def _number(form: dict[str, str], name: str, cast: type = int) -> Any:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return cast(text)
    except ValueError:
        raise ValueError(f"{name}: '{text}' is not a number") from None


def limits_payload(form: dict[str, str]) -> dict[str, Any]:
    """The SDK-shaped limits from the form's rpm, tpm, max_concurrent, budget fields."""
    rate = [{"type": "requests", "unit": "rpm", "value": _number(form, "rpm")},
            {"type": "tokens", "unit": "rpm", "value": _number(form, "tpm")},
            {"type": "concurrency", "value": _number(form, "max_concurrent")}]
    payload: dict[str, Any] = {"rate_limits": [r for r in rate if r["value"] is not None]}
    budget = _number(form, "budget_usd", float)
    if budget is not None:
        payload["usage_limits"] = {"credit_limit": budget,
                                   "periodic_reset": form.get("budget_period") or None}
    return payload


def allow_lists(form: dict[str, str]) -> dict[str, list[str]]:
    """`allowed_*` fields, comma-separated in the form; an empty field leaves it unrestricted."""
    lists = {}
    for name in ("allowed_virtual_keys", "allowed_configs", "allowed_models"):
        values = [v.strip() for v in form.get(name, "").split(",") if v.strip()]
        if values:
            lists[name] = values
    return lists


async def _listing(request: Request, kind: Literal["api_key", "virtual_key"],
                   rows: list[Any]) -> list[dict[str, Any]]:
    services = services_of(request)
    out = []
    for row in rows:
        view = (virtual_keys.view if kind == "virtual_key" else api_keys.view)(row)
        out.append({"row": view, "usage": await usage_of(services, kind, row)})
    return out


async def virtual_keys_page(request: Request, status: int = 200, error: str | None = None,
                            created: dict[str, Any] | None = None) -> Response:
    store = store_of(request)
    items = await _listing(request, "virtual_key", await virtual_keys.list_all(store))
    form = form_of(request) if error else {}
    return render(request, "virtual_keys.html", status, items=items, error=error,
                  created=created, form={k: v for k, v in form.items() if k != "key"},
                  providers=sorted(REGISTRY), periods=_PERIODS,
                  can_seal=store.box.can_seal)


async def create_virtual_key(request: Request) -> Response:
    form = form_of(request)
    try:
        payload = {"name": form.get("name", "").strip(), "provider": form.get("provider", ""),
                   "note": form.get("note") or None, **limits_payload(form)}
        if form.get("key"):
            payload["key"] = form["key"]
        row = await virtual_keys.create(store_of(request), payload)
    except ValueError as exc:
        return await virtual_keys_page(request, 400, str(exc))
    except GatewayError as exc:
        return await virtual_keys_page(request, exc.status, exc.message)
    request.scope["console_form"] = {}
    return await virtual_keys_page(request, 201, created=virtual_keys.view(row))


async def revoke_virtual_key(request: Request) -> Response:
    await virtual_keys.revoke(store_of(request), request.path_params["ref"])
    return RedirectResponse("/console/virtual-keys", 303)


async def api_keys_page(request: Request, status: int = 200, error: str | None = None,
                        new_key: str | None = None) -> Response:
    items = await _listing(request, "api_key", await api_keys.list_all(store_of(request)))
    return render(request, "api_keys.html", status, items=items, error=error, new_key=new_key,
                  form=form_of(request) if error else {}, periods=_PERIODS)


async def create_api_key(request: Request) -> Response:
    form = form_of(request)
    try:
        scopes = [s for s in form.get("scopes", "").split(",") if s] or ["inference"]
        payload = {"name": form.get("name", "").strip(), "scopes": scopes,
                   "description": form.get("description") or None, **limits_payload(form),
                   **allow_lists(form)}
        _, key = await api_keys.create(store_of(request), payload)
    except ValueError as exc:
        return await api_keys_page(request, 400, str(exc))
    except GatewayError as exc:
        return await api_keys_page(request, exc.status, exc.message)
    # The only time this key is shown; the page is never cached (cache-control: no-store).
    return await api_keys_page(request, 201, new_key=key)


async def revoke_api_key(request: Request) -> Response:
    await api_keys.revoke(store_of(request), request.path_params["ref"])
    return RedirectResponse("/console/api-keys", 303)


routes = [
    page("/virtual-keys", virtual_keys_page),
    page("/virtual-keys", create_virtual_key, ("POST",)),
    page("/virtual-keys/{ref}/revoke", revoke_virtual_key, ("POST",)),
    page("/api-keys", api_keys_page),
    page("/api-keys", create_api_key, ("POST",)),
    page("/api-keys/{ref}/revoke", revoke_api_key, ("POST",)),
]

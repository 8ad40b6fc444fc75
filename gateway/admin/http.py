"""What every admin handler does: check the caller, read the JSON body, render JSON."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.contracts.request import PREFIX
from gateway.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from gateway.pipeline.services import Services
from gateway.server.bodies import read_body
from gateway.store.key_store import KeyStore, database_errors

_ADMIN_BODY_LIMIT = 1024 * 1024


def _credential(request: Request) -> str | None:
    key = request.headers.get(PREFIX + "api-key")
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def admin_store(request: Request) -> KeyStore:
    """The key store, once the caller has shown the admin token or an admin-scope API key."""
    services: Services = request.app.state.services
    credential = _credential(request)
    if credential is None:
        raise AuthenticationFailed(
            "the admin API needs GATEWAY_ADMIN_TOKEN or an admin-scope gateway API key, sent "
            "as x-portkey-api-key or Authorization: Bearer", code="missing_admin_credential")
    token = services.settings.admin_token
    if token is None or not hmac.compare_digest(credential.encode(),
                                                token.get_secret_value().encode()):
        principal = await services.resolver.authenticate(credential)
        if principal is None:
            raise AuthenticationFailed("the admin credential is neither GATEWAY_ADMIN_TOKEN nor "
                                       "a gateway API key", code="invalid_admin_credential")
        if "admin" not in principal.scopes:
            raise PermissionDenied("this gateway API key lacks the 'admin' scope",
                                   code="admin_scope_required")
    if services.key_store is None:
        raise InvalidRequest("the gateway has no key store", code="no_key_store")
    return services.key_store


async def json_body(request: Request) -> Any:
    raw = await read_body(request, _ADMIN_BODY_LIMIT)
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("request body is not valid JSON", code="invalid_body") from None


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status, media_type="application/json")


def listing(items: list[dict[str, Any]]) -> Response:
    return json_response({"object": "list", "total": len(items), "data": items})


Handler = Callable[[Request], Awaitable[Response]]


def route(path: str, handler: Handler, methods: list[str]) -> Route:
    """An admin route whose database failures answer 503, not 500."""
    async def guarded(request: Request) -> Response:
        with database_errors():
            return await handler(request)
    return Route(path, guarded, methods=methods, name=f"{handler.__module__}.{handler.__name__}")

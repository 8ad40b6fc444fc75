"""What every console page does: find the session, render a template, read a form."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from markupsafe import Markup
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.console.session import COOKIE, Session, SessionSigner, csrf_ok, session_key
from gateway.db.models import ApiKeyRow
from gateway.errors import GatewayError, InvalidRequest
from gateway.pipeline.services import Services
from gateway.server.bodies import read_body
from gateway.settings import Settings
from gateway.store.key_store import KeyStore, database_errors

if TYPE_CHECKING:
    from jinja2 import Environment

_FORM_LIMIT = 256 * 1024
# Pages may show a key once (a new API key); none may be cached or framed.
_HEADERS = {"cache-control": "no-store", "x-frame-options": "DENY",
            "x-content-type-options": "nosniff", "referrer-policy": "same-origin",
            "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                       "img-src 'self' data:; form-action 'self'; "
                                       "frame-ancestors 'none'"}


@dataclass
class Console:
    """The console's long-lived parts, made in the lifespan."""

    signer: SessionSigner

    @classmethod
    def from_settings(cls, settings: Settings) -> Console:
        return cls(SessionSigner(session_key(settings), settings.console_session_hours * 3600))

    @cached_property
    def templates(self) -> Environment:
        # Jinja loads with the first page served: a gateway nobody browses does not carry it.
        from jinja2 import Environment, PackageLoader, select_autoescape

        return Environment(loader=PackageLoader("gateway.console", "templates"),
                           autoescape=select_autoescape(default=True), trim_blocks=True,
                           lstrip_blocks=True)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def store_of(request: Request) -> KeyStore:
    store = services_of(request).key_store
    if store is None:
        raise InvalidRequest("the gateway has no key store", code="no_key_store")
    return store


def render(request: Request, template: str, status: int = 200, **values: Any) -> Response:
    page = console_of(request).templates.get_template(template)
    html = page.render(request=request, session=request.scope.get("console_session"),
                       path=request.url.path, **values)
    return HTMLResponse(html, status, headers=_HEADERS)


def csrf_field(session: Session) -> Markup:
    return Markup('<input type="hidden" name="csrf" value="{}">').format(session.csrf)


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the only kind the console's pages send); repeated names join by ','."""
    raw = await read_body(request, _FORM_LIMIT)
    form: dict[str, str] = {}
    for name, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        form[name] = f"{form[name]},{value}" if name in form else value
    return form


async def current_session(request: Request) -> Session | None:
    console = console_of(request)
    session = console.signer.read(request.cookies.get(COOKIE), time.time())
    if session is None or session.subject == "admin":
        admin_token = services_of(request).settings.admin_token
        return session if session is None or admin_token is not None else None
    # An API key's session lasts only while the key is active, unexpired and admin-scoped.
    key_id = session.subject.removeprefix("api_key:")
    store = services_of(request).key_store
    if store is None:
        return None
    async with store.db.sessions() as db:
        row = (await db.execute(select(ApiKeyRow).where(ApiKeyRow.id == key_id))).scalar()
    if row is None or row.status != "active" or "admin" not in (row.scopes or []):
        return None
    if row.expires_at is not None and row.expires_at.timestamp() <= time.time():
        return None
    return session


Handler = Callable[[Request], Awaitable[Response]]


def page(path: str, handler: Handler, methods: tuple[str, ...] = ("GET",)) -> Route:
    """A logged-in page: no session sends the browser to the login form; a POST without the
    session's CSRF token is refused; gateway errors render as an HTML page, not JSON."""
    async def guarded(request: Request) -> Response:
        try:
            with database_errors():
                session = await current_session(request)
                if session is None:
                    target = request.url.path + (f"?{request.url.query}"
                                                 if request.url.query else "")
                    return RedirectResponse("/console/login?next=" + quote(target), 303)
                request.scope["console_session"] = session
                if request.method == "POST":
                    form = await read_form(request)
                    if not csrf_ok(session, form.get("csrf")):
                        return render(request, "error.html", 403,
                                      message="The form's CSRF token is missing or wrong. "
                                              "Reload the page and try again.")
                    request.scope["console_form"] = form
                return await handler(request)
        except GatewayError as exc:
            return render(request, "error.html", exc.status, message=exc.message)
    return Route(path, guarded, methods=list(methods), name=f"console.{handler.__name__}")


def form_of(request: Request) -> dict[str, str]:
    form: dict[str, str] = request.scope.get("console_form", {})
    return form

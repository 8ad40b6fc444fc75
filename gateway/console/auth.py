"""Logging in with the admin token or an admin-scope API key, and logging out."""

from __future__ import annotations

import hmac
import secrets
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.console.session import COOKIE, LOGIN_COOKIE
from gateway.console.web import console_of, page, read_form, render, services_of
from gateway.errors import AuthenticationFailed, GatewayError
from gateway.store.key_store import database_errors


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never another site (an open redirect)."""
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return "/console"


def _cookie_options(request: Request) -> dict[str, object]:
    return {"httponly": True, "samesite": "strict", "path": "/console",
            "secure": request.url.scheme == "https"}


def _login_page(request: Request, status: int = 200, error: str | None = None,
                next_path: str = "/console") -> Response:
    nonce = secrets.token_urlsafe(16)
    response = render(request, "login.html", status, error=error, next_path=next_path,
                      csrf=console_of(request).signer.login_token(nonce),
                      admin_token_set=services_of(request).settings.admin_token is not None)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, **_cookie_options(request))
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request, next_path=_safe_next(request.query_params.get("next")))


async def _subject(request: Request, credential: str) -> tuple[str, str] | None:
    """('admin', label) or ('api_key:<id>', label) for a good credential, else None."""
    services = services_of(request)
    token = services.settings.admin_token
    if token is not None and hmac.compare_digest(credential.encode(),
                                                 token.get_secret_value().encode()):
        return "admin", "admin token"
    try:
        with database_errors():
            principal = await services.resolver.authenticate(credential or None)
    except AuthenticationFailed:  # unknown, revoked or expired: the same answer as a typo
        return None
    if principal is None or "admin" not in principal.scopes:
        return None
    return f"api_key:{principal.id}", f"API key '{principal.name}'"


async def login(request: Request) -> Response:
    form = await read_form(request)
    next_path = _safe_next(form.get("next"))
    signer = console_of(request).signer
    if not signer.check_login_token(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return _login_page(request, 403, "The form expired or its CSRF token is wrong; "
                                         "try again.", next_path)
    try:
        subject = await _subject(request, form.get("token", "").strip())
    except GatewayError as exc:  # the key store is down: say so, not "wrong token"
        return _login_page(request, exc.status, exc.message, next_path)
    if subject is None:
        return _login_page(request, 401, "That is neither the admin token nor an "
                                         "admin-scope API key.", next_path)
    response = RedirectResponse(next_path, 303)
    options = _cookie_options(request)
    response.set_cookie(COOKIE, signer.issue(*subject, time.time()),
                        max_age=int(signer.lifetime_s), **options)
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")
    return response


routes = [
    Route("/login", login_form, methods=["GET"], name="console.login_form"),
    Route("/login", login, methods=["POST"], name="console.login"),
    page("/logout", logout, ("POST",)),
]

"""The shared upstream client: one pool for every caller, so it must keep no caller's state."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import ThreadedServer


def cookie_upstream() -> Starlette:
    async def login(request: Request) -> JSONResponse:
        response = JSONResponse({"ok": True})
        response.set_cookie("session", "tenant-a-secret", path="/")
        return response

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"cookie": request.headers.get("cookie")})

    return Starlette(routes=[Route("/v1/login", login, methods=["POST"]),
                             Route("/v1/whoami", whoami, methods=["GET"])])


def test_upstream_cookies_never_reach_another_request(
        start_gateway: Callable[..., ThreadedServer]):
    """A Set-Cookie from an upstream answer to one caller is not replayed for the next."""
    with ThreadedServer(cookie_upstream()) as upstream:
        gateway = start_gateway(provider_base_urls={"openai": f"{upstream.url}/v1"})
        with httpx.Client(base_url=f"{gateway.url}/v1") as client:
            tenant_a = client.post("/login", json={},
                                   headers={"x-portkey-provider": "openai",
                                            "authorization": "Bearer sk-tenant-a"})
            assert tenant_a.status_code == 200
            client.cookies.clear()
            tenant_b = client.get("/whoami", headers={"x-portkey-provider": "openai",
                                                      "authorization": "Bearer sk-tenant-b"})
    assert tenant_b.status_code == 200
    assert tenant_b.json() == {"cookie": None}

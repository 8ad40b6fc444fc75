"""A loopback server for the guardrail checks that call out (webhook, log).

    POST /verdict/<true|false>   a webhook answer {"verdict": ..., "data": {"seen": true}}
    POST /status/<N>             answers status N with a JSON error body
    POST /hold                   answers nothing until the caller gives up (a slow webhook)
    POST /log                    200, empty body (the log check wants no JSON)

Every call is recorded on arrival, before it is answered (`calls`), with its query string, so
a test can tag calls (`?tag=start`) and wait for one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class HookCall:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HookServer:
    calls: list[HookCall] = field(default_factory=list)
    abandoned: int = 0  # /hold calls whose caller gave up

    def reset(self) -> None:
        self.calls.clear()
        self.abandoned = 0

    def tagged(self, tag: str) -> list[HookCall]:
        return [call for call in self.calls if f"tag={tag}" in call.query.split("&")]

    def payload(self, call: HookCall) -> Any:
        return orjson.loads(call.body)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        path = request.path_params["path"]
        self.calls.append(HookCall(path, request.url.query, dict(request.headers),
                                   await request.body()))
        kind, _, value = path.partition("/")
        if kind == "verdict":
            return JSONResponse({"verdict": value == "true", "data": {"seen": True}})
        if kind == "status":
            return JSONResponse({"error": {"message": f"scripted {value}"}}, int(value))
        if kind == "hold":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(120):
                    while (await request.receive())["type"] != "http.disconnect":
                        pass
                    self.abandoned += 1
            return Response(status_code=499)
        return Response(status_code=200)

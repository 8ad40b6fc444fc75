"""A loopback upstream that answers with recorded provider bytes and records each request.

Tests set `reply` (or `routes[path_prefix]`) to a `Reply` holding a fixture file's bytes;
streams are written in small pieces so that decoders must join partial frames and lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

PIECE = 37  # bytes per written piece of a stream: deliberately not a frame boundary


@dataclass(frozen=True)
class Reply:
    body: bytes
    status: int = 200
    content_type: str = "application/json"
    stream: bool = False


@dataclass
class Seen:
    method: str
    path: str
    query: str
    url: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.raw)


@dataclass
class FixtureUpstream:
    reply: Reply | None = None
    routes: dict[str, Reply] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    def reset(self) -> None:
        self.reply = None
        self.routes.clear()
        self.requests.clear()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        path = request.scope.get("raw_path", b"").decode() or request.url.path
        self.requests.append(Seen(request.method, path, request.url.query, str(request.url),
                                  dict(request.headers), raw))
        reply = next((r for prefix, r in self.routes.items() if path.startswith(prefix)),
                     self.reply)
        if reply is None:
            return Response(b'{"message":"no reply scripted"}', 599)
        if reply.stream:
            return StreamingResponse(_pieces(reply.body), reply.status,
                                     media_type=reply.content_type)
        return Response(reply.body, reply.status, media_type=reply.content_type)


async def _pieces(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), PIECE):
        yield body[start:start + PIECE]

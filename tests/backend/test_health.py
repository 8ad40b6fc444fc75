"""Readiness polling against a real loopback server standing in for vLLM's /health."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from backend.health import is_ready, wait_ready
from tests.support.servers import ThreadedServer, free_port


def health_app(status: int) -> Starlette:
    async def health(request: object) -> Response:
        return Response(status_code=status)
    return Starlette(routes=[Route("/health", health)])


def test_ready_when_health_answers_200():
    with ThreadedServer(health_app(200)) as server:
        assert is_ready(server.url)
        assert wait_ready(server.url, deadline_s=5, alive=lambda: True, interval=0.05)


def test_not_ready_while_loading_or_down():
    with ThreadedServer(health_app(503)) as server:
        assert not is_ready(server.url)
        assert not wait_ready(server.url, deadline_s=0.3, alive=lambda: True, interval=0.05)
    assert not is_ready(f"http://127.0.0.1:{free_port()}")


def test_gives_up_at_once_when_vllm_died():
    with ThreadedServer(health_app(200)) as server:
        assert not wait_ready(server.url, deadline_s=60, alive=lambda: False)

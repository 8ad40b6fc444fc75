"""The shared upstream client, under each transport: it keeps no caller's state, cancels what
the client abandons, and turns a broken upstream into a 502."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import httpcore
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.errors import UpstreamMalformed
from gateway.net.httpcore_transport import _ERRORS, _mapped
from gateway.net.upstream import body_chunks, create_client, read_body
from gateway.settings import Settings
from tests.support.mock_upstream import MockUpstream
from tests.support.servers import ThreadedServer
from tests.support.waiting import until, wait_until

TRANSPORTS = pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
OPENAI = {"x-portkey-provider": "openai", "authorization": "Bearer sk-test"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def cookie_upstream() -> Starlette:
    async def login(request: Request) -> JSONResponse:
        response = JSONResponse({"ok": True})
        response.set_cookie("session", "tenant-a-secret", path="/")
        return response

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"cookie": request.headers.get("cookie")})

    return Starlette(routes=[Route("/v1/login", login, methods=["POST"]),
                             Route("/v1/whoami", whoami, methods=["GET"])])


@TRANSPORTS
def test_upstream_cookies_never_reach_another_request(
        start_gateway: Callable[..., ThreadedServer], transport: str):
    """A Set-Cookie from an upstream answer to one caller is not replayed for the next."""
    with ThreadedServer(cookie_upstream()) as upstream:
        gateway = start_gateway(provider_base_urls={"openai": f"{upstream.url}/v1"},
                                upstream_transport=transport)
        with httpx.Client(base_url=f"{gateway.url}/v1") as client:
            tenant_a = client.post("/login", json={},
                                   headers={**OPENAI, "authorization": "Bearer sk-tenant-a"})
            assert tenant_a.status_code == 200
            client.cookies.clear()
            tenant_b = client.get("/whoami",
                                  headers={**OPENAI, "authorization": "Bearer sk-tenant-b"})
    assert tenant_b.status_code == 200
    assert tenant_b.json() == {"cookie": None}


@TRANSPORTS
def test_client_leaving_mid_stream_cancels_the_upstream_stream(
        start_gateway: Callable[..., ThreadedServer], mock: MockUpstream, mock_url: str,
        transport: str):
    gateway = start_gateway(provider_base_urls={"openai": f"{mock_url}/s/slow-300/v1"},
                            upstream_transport=transport)
    with httpx.Client(base_url=f"{gateway.url}/v1", timeout=10) as client, client.stream(
            "POST", "/chat/completions", json={**CHAT, "stream": True}, headers=OPENAI) as resp:
        assert resp.status_code == 200
        first = next(resp.iter_lines())
        assert first.startswith("data: ")
    wait_until(lambda: mock.cancelled_streams, interval=0.05)
    assert mock.cancelled_streams == 1


@pytest.fixture(params=[b"this is not HTTP at all\r\n\r\n", b""], ids=["garbage", "close"])
def broken_upstream(request: pytest.FixtureRequest) -> Iterator[str]:
    """A TCP server that answers every request with bytes that are not HTTP, or hangs up."""
    reply: bytes = request.param
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join(5)
    listener.close()


@TRANSPORTS
def test_upstream_answering_garbage_or_nothing_is_502(
        start_gateway: Callable[..., ThreadedServer], broken_upstream: str, transport: str):
    gateway = start_gateway(provider_base_urls={"openai": broken_upstream},
                            upstream_transport=transport)
    for stream in (False, True):
        response = httpx.post(f"{gateway.url}/v1/chat/completions",
                              json={**CHAT, "stream": stream}, headers=OPENAI, timeout=10)
        assert response.status_code == 502, response.text
        assert response.json()["error"]["message"].startswith("openai ")


@TRANSPORTS
def test_request_timeout_cancels_a_hanging_upstream(
        start_gateway: Callable[..., ThreadedServer], mock_url: str, transport: str):
    gateway = start_gateway(provider_base_urls={"openai": f"{mock_url}/s/hang/v1"},
                            upstream_transport=transport)
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10,
                          headers={**OPENAI, "x-portkey-request-timeout": "300"})
    assert response.status_code == 408
    assert response.json()["error"]["type"] == "timeout_error"


@TRANSPORTS
async def test_a_signed_path_goes_out_as_built_and_the_body_comes_back_whole(transport: str):
    """The URL is sent exactly as built (Bedrock's SigV4 signs the path: `%3A` must not become
    `:`), and an unencoded body, read from the transport's own stream, arrives whole."""
    request_lines: list[bytes] = []
    body = bytes(range(256)) * 400  # 100 KiB: more than one read

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_lines.append(head.split(b"\r\n", 1)[0])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = create_client(Settings(_env_file=None, upstream_transport=transport))
    try:
        response = await client.send_direct(
            "POST", f"http://127.0.0.1:{port}/model/a%3Ab/invoke", {}, b"{}")
        assert await read_body(response, 1 << 20, "bedrock") == body
    finally:
        await client.aclose()
        server.close()
    assert request_lines == [b"POST /model/a%3Ab/invoke HTTP/1.1"]


def test_every_httpcore_error_becomes_its_httpx_twin():
    """A new httpcore error with no mapping fails here (httpx has the same test)."""
    errors = [cls for name in httpcore.__all__
              if isinstance(cls := getattr(httpcore, name), type) and issubclass(cls, Exception)
              and cls is not httpcore.ConnectionNotAvailable]  # the pool's own retry signal
    assert len(errors) == 14
    for cls in errors:
        with pytest.raises(httpx.TransportError) as raised, _mapped():
            raise cls("boom")
        assert type(raised.value).__name__ == cls.__name__ and str(raised.value) == "boom"
        assert type(raised.value) is _ERRORS[cls]
    with pytest.raises(KeyError), _mapped():  # anything else passes through
        raise KeyError("x")


@TRANSPORTS
async def test_kept_alive_connections_are_reused_and_a_half_read_one_is_dropped(transport: str):
    """Read to its end, a body hands its connection back; closed half-read, the connection is
    dropped and the next request gets a new one; a body cut short is a broken upstream."""
    connections = closed = 0
    bodies = {b"/small": b"ok", b"/big": b"x" * (1 << 20)}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections, closed
        connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                path = head.split(b" ", 2)[1]
                if path == b"/short":  # promises 100 bytes, sends 10, hangs up
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"y" * 10)
                    break
                body = bodies[path]
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            closed += 1

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    client = create_client(Settings(_env_file=None, upstream_transport=transport))
    try:
        for _ in range(2):
            small = await client.send_direct("GET", f"{base}/small", {}, None)
            assert await read_body(small, 100, "openai") == b"ok"
        big = await client.send_direct("GET", f"{base}/big", {}, None)
        chunks = aiter(body_chunks(big))
        assert (await anext(chunks)).startswith(b"x")
        await big.aclose()
        assert await until(lambda: closed == 1)
        small = await client.send_direct("GET", f"{base}/small", {}, None)
        assert await read_body(small, 100, "openai") == b"ok"
        assert connections == 2
        short = await client.send_direct("GET", f"{base}/short", {}, None)
        with pytest.raises(UpstreamMalformed, match="^openai broke the connection"):
            await read_body(short, 1000, "openai")
    finally:
        await client.aclose()
        server.close()

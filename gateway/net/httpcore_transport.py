"""httpx's transport API over httpcore's connection pool, on the public API of both.

What `httpx.AsyncHTTPTransport(limits=..., trust_env=False)` does for a request without a
proxy, with one thing it offers no argument for: the pool's network backend (the pin,
gateway/net/pinning.py). HTTP/1.1 only, certificates verified with httpx's default SSL context.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager

import httpcore
import httpx

# httpcore's errors and httpx's twin of each; `_mapped` picks the most specific one.
# httpcore.ConnectionNotAvailable is the pool's own signal to retry and never leaves it.
_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextmanager
def _mapped() -> Iterator[None]:
    """httpcore's errors raised as httpx's, so callers catch one error tree."""
    try:
        yield
    except Exception as exc:
        for cls in type(exc).__mro__:  # the most specific class first
            mapped = _ERRORS.get(cls)
            if mapped is not None:
                raise mapped(str(exc)) from exc
        raise


class HttpcoreTransport(httpx.AsyncBaseTransport):
    def __init__(self, limits: httpx.Limits,
                 network_backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True, http2=False, network_backend=network_backend)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        with _mapped():
            answer = await self._pool.handle_async_request(sent)
        return httpx.Response(status_code=answer.status, headers=answer.headers,
                              stream=_Body(answer), extensions=answer.extensions)

    async def aclose(self) -> None:
        with _mapped():
            await self._pool.aclose()


class _Body(httpx.AsyncByteStream):
    """An httpcore response's body; closing it hands the connection back to the pool (or
    drops it, when the body was not read to its end)."""

    def __init__(self, response: httpcore.Response) -> None:
        assert isinstance(response.stream, AsyncIterable)
        self._response = response
        self._stream: AsyncIterable[bytes] = response.stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _mapped():
            await self._response.aclose()

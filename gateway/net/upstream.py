"""The one shared HTTP client, and the one place where its errors become gateway errors.

The client is httpx's API; by default its connections are aiohttp's (GATEWAY_UPSTREAM_TRANSPORT).
httpcore's own pool spends about three times the CPU per request, and more the more connections
it pools (it probes every idle one on every request): see bench/README.md.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.cookiejar import Cookie, CookieJar
from typing import Any

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport

from gateway.errors import (
    InvalidRequest,
    RequestTimeout,
    UpstreamMalformed,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from gateway.net.httpcore_transport import HttpcoreTransport
from gateway.net.pinning import PinnedBackend, PinnedResolver
from gateway.settings import Settings


def create_client(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=settings.max_connections,
                          max_keepalive_connections=settings.max_connections,
                          keepalive_expiry=_IDLE_KEEPALIVE_S)
    # Overall limits come from asyncio timeouts per attempt; httpx bounds connect and idle reads.
    timeout = httpx.Timeout(connect=settings.connect_timeout, read=settings.stream_idle_timeout,
                            write=60.0, pool=settings.connect_timeout)
    transport = _aiohttp_transport(settings) if settings.upstream_transport == "aiohttp" \
        else _httpx_transport(limits)
    return UpstreamClient(limits=limits, timeout=timeout, follow_redirects=False,
                          trust_env=False, cookies=_NoCookies(), transport=transport)


_URL_CACHE_SIZE = 4096
_IDLE_KEEPALIVE_S = 4.0


class UpstreamClient(httpx.AsyncClient):
    """httpx's client, plus a direct path for the request hot path.

    `send_direct` hands the request straight to the transport, skipping the auth flow,
    redirect handling, cookie extraction and event hooks, none of which an upstream call
    uses; that is about a tenth of the gateway's CPU per request (bench/README.md).
    """

    def __init__(self, *, timeout: httpx.Timeout, transport: httpx.AsyncBaseTransport,
                 **options: Any) -> None:
        super().__init__(timeout=timeout, transport=transport, **options)
        self._upstream = transport  # the only one: no proxies, no mounts (trust_env is off)
        self._timeouts = timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}

    def _url(self, url: str) -> httpx.URL:
        """Parsed URLs, kept: upstream URLs repeat, and parsing one costs more than sending."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def send_direct(self, method: str, url: str, headers: dict[str, str],
                          content: bytes | None) -> httpx.Response:
        """Send and return the response with its body unread (close it with `aclose`)."""
        request = httpx.Request(method, self._url(url), headers=headers, content=content,
                                extensions={"timeout": self._timeouts})
        response = await self._upstream.handle_async_request(request)
        response.request = request
        return response


def _aiohttp_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    ssl_context = httpx.create_ssl_context(trust_env=False)

    def session() -> aiohttp.ClientSession:
        # Made on first use, inside the running loop; closed by the client's aclose().
        # Idle connections are dropped before the usual server-side idle limit (5 s in
        # uvicorn, so vLLM, and Node): reusing one the server is closing resets the request.
        # DNS goes through the pin (gateway/net/pinning.py); aiohttp's own cache would answer
        # before the resolver is asked, so PinnedResolver caches instead.
        connector = aiohttp.TCPConnector(limit=settings.max_connections,
                                         keepalive_timeout=_IDLE_KEEPALIVE_S, ssl=ssl_context,
                                         resolver=PinnedResolver(), use_dns_cache=False)
        return _ExactURLSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                auto_decompress=False, trust_env=False)

    return AiohttpTransport(client=session)


def _httpx_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpcore's pool, as AsyncClient would make it, connecting through the pin."""
    return HttpcoreTransport(limits, network_backend=PinnedBackend())


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # aiohttp discourages subclassing

    class _ExactURLSession(aiohttp.ClientSession):
        """Sends the URL exactly as built: yarl would re-quote it (`%3A` → `:`), and a
        signed request (Bedrock's SigV4 covers the path) must reach the upstream unchanged."""

        def request(self, method: str, url: Any, **kwargs: Any) -> Any:
            if isinstance(url, str):  # the transport passes the URL as a string
                url = yarl.URL(url, encoded=True)
            return super().request(method, url, **kwargs)


class _NoCookies(CookieJar):
    """The client is shared by every caller: a cookie one upstream answer sets must never
    ride along on someone else's request, so nothing is stored (and nothing is parsed)."""

    def extract_cookies(self, response: object, request: object) -> None:
        return None

    def set_cookie(self, cookie: Cookie) -> None:
        return None


def body_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """A streamed body as it arrives. An uncompressed body is read from the transport's own
    stream (`response.stream`, the `httpx.AsyncByteStream` a transport returns): httpx's
    layers above it cost microseconds per streamed token (bench/README.md, "Contained
    experiments"). A compressed one goes through `aiter_bytes`, which decodes it."""
    stream = response.stream
    if isinstance(stream, httpx.AsyncByteStream) and response.headers.get(
            "content-encoding", "identity") == "identity":
        return aiter(stream)
    return response.aiter_bytes()


async def read_body(response: httpx.Response, limit: int, provider: str, *,
                    truncate: bool = False) -> bytes:
    """The whole body, but never more than `limit` bytes read: past it, UpstreamTooLarge,
    or with `truncate` the first `limit` bytes. Closes the response either way."""
    if not truncate and _declared_length(response) > limit:
        raise body_too_large(provider, limit)
    chunks: list[bytes] = []
    size = 0
    try:
        with map_httpx_errors(provider):
            async for chunk in body_chunks(response):
                size += len(chunk)
                if size > limit:
                    if not truncate:
                        raise body_too_large(provider, limit)
                    chunks.append(chunk[:len(chunk) - (size - limit)])
                    break
                chunks.append(chunk)
    finally:
        await response.aclose()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def body_too_large(provider: str, limit: int) -> UpstreamTooLarge:
    return UpstreamTooLarge(f"{provider} answered with more than {limit} bytes, the gateway's "
                            "limit for one upstream answer", provider=provider)


def _declared_length(response: httpx.Response) -> int:
    """Content-Length of an unencoded body (0 when absent): a large one is refused unread."""
    length = response.headers.get("content-length", "")
    if len(length) < 8 or not length.isdigit():  # under 10 MB: not worth a second lookup
        return 0
    if response.headers.get("content-encoding", "identity") != "identity":
        return 0
    return int(length)


@contextmanager
def map_httpx_errors(provider: str) -> Iterator[None]:
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise UpstreamUnreachable(f"{provider} is unreachable: {_describe(exc)}",
                                  provider=provider) from exc
    except httpx.ReadTimeout as exc:
        raise RequestTimeout(f"{provider} sent nothing for too long: {_describe(exc)}",
                             provider=provider) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
            httpx.DecodingError) as exc:
        raise UpstreamMalformed(f"{provider} broke the connection: {_describe(exc)}",
                                provider=provider) from exc
    except httpx.HTTPError as exc:
        raise UpstreamUnreachable(f"{provider} request failed: {_describe(exc)}",
                                  provider=provider) from exc
    except httpx.InvalidURL as exc:  # options are checked first; this is the last line
        raise InvalidRequest(f"the upstream URL built for {provider} is invalid: "
                             f"{_describe(exc)}", provider=provider,
                             code="invalid_upstream_url") from exc
    except aiohttp.ClientError as exc:  # what the aiohttp transport does not map to httpx's
        raise UpstreamMalformed(f"{provider} broke the connection: {_describe(exc)}",
                                provider=provider) from exc


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__

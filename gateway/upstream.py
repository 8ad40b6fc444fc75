"""The one shared HTTP client, and the one place where httpx's errors become gateway errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import Cookie, CookieJar

import httpx

from gateway.errors import RequestTimeout, UpstreamMalformed, UpstreamUnreachable
from gateway.settings import Settings


def create_client(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=settings.max_connections,
                          max_keepalive_connections=settings.max_connections,
                          keepalive_expiry=30)
    # Overall limits come from asyncio timeouts per attempt; httpx bounds connect and idle reads.
    timeout = httpx.Timeout(connect=settings.connect_timeout, read=settings.stream_idle_timeout,
                            write=60.0, pool=settings.connect_timeout)
    return httpx.AsyncClient(limits=limits, timeout=timeout, follow_redirects=False,
                             trust_env=False, cookies=_NoCookies())


class _NoCookies(CookieJar):
    """The client is shared by every caller: a cookie one upstream answer sets must never
    ride along on someone else's request, so nothing is stored (and nothing is parsed)."""

    def extract_cookies(self, response: object, request: object) -> None:
        return None

    def set_cookie(self, cookie: Cookie) -> None:
        return None


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


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__

"""Connect to the addresses the SSRF guard checked, not to a second DNS answer.

`HostGuard.check` resolves a client's custom host once, checks every address, and `pin`s
them in a context variable. The upstream client's resolver (aiohttp) or network backend
(httpcore, GATEWAY_UPSTREAM_TRANSPORT=httpx) consults the pin first: a pinned host name is
never looked up again, so a DNS answer that changes between the check and the connection
(DNS rebinding) cannot send the request to an internal address. Requests without a client
custom host set no pin; their lookups take one dictionary read more than before.

The pin lives in the request's context: tasks created from it inherit it, other requests
never see it. aiohttp's own DNS cache is off (it answers before any resolver is asked);
`PinnedResolver` caches unpinned answers itself, for the same 10 seconds aiohttp would.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import httpcore
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

_PIN: ContextVar[Mapping[str, tuple[str, ...]] | None] = ContextVar("upstream_pin", default=None)

DNS_CACHE_TTL_S = 10.0
_DNS_CACHE_SIZE = 1024


def pin(host: str, addresses: tuple[str, ...]) -> None:
    """Connections made from this context to `host` go to `addresses` only."""
    current = _PIN.get()
    _PIN.set({**current, host: addresses} if current else {host: addresses})


def pinned(host: str) -> tuple[str, ...] | None:
    current = _PIN.get()
    return None if current is None else current.get(host.lower())


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver: the pin when there is one, else the default resolver, cached."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else DefaultResolver()
        self._cache: dict[tuple[str, int, int], tuple[float, list[ResolveResult]]] = {}

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = pinned(host)
        if addresses is not None:
            return [_result(host, address, port) for address in addresses]
        key = (host, port, family)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        results = await self._inner.resolve(host, port, family)
        if len(self._cache) >= _DNS_CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = (now + DNS_CACHE_TTL_S, results)
        return results

    async def close(self) -> None:
        await self._inner.close()


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0,
                         flags=socket.AI_NUMERICHOST)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend: TCP connections to a pinned host go to its addresses.

    TLS still names the host (httpcore passes the origin's host as `server_hostname`)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        addresses = pinned(host)
        if addresses is None:
            return await self._inner.connect_tcp(host, port, timeout, local_address,
                                                 socket_options)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address,
                                                     socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

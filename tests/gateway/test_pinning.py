"""Resolve once, connect to the checked address: the pin beats a second DNS answer."""

from __future__ import annotations

import asyncio
import contextvars
import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.errors import InvalidRequest
from gateway.net import pinning
from gateway.net.hostguard import HostGuard
from gateway.net.upstream import create_client
from gateway.settings import Settings
from tests.support.mock_upstream import MockUpstream
from tests.support.servers import ThreadedServer

REBINDING = "rebinding.test"


class ChangingResolver(AbstractResolver):
    """A DNS server that rebinds: its answer to every lookup is another loopback address."""

    def __init__(self) -> None:
        self.calls = 0

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.calls += 1
        return [ResolveResult(hostname=host, host=f"127.0.0.{100 + self.calls}", port=port,
                              family=socket.AF_INET, proto=0, flags=0)]

    async def close(self) -> None:
        return None


async def test_resolver_answers_a_pinned_host_without_asking_dns():
    inner = ChangingResolver()
    resolver = pinning.PinnedResolver(inner)
    pinning.pin(REBINDING, ("127.0.0.1",))
    first = await resolver.resolve(REBINDING, 80)
    second = await resolver.resolve(REBINDING, 80)
    assert [r["host"] for r in first + second] == ["127.0.0.1", "127.0.0.1"]
    assert first[0]["hostname"] == REBINDING  # TLS still names the host
    assert inner.calls == 0


async def test_unpinned_lookups_are_cached_and_pins_stay_in_their_context():
    inner = ChangingResolver()
    resolver = pinning.PinnedResolver(inner)

    async def other_request() -> str:
        return (await resolver.resolve(REBINDING, 80))[0]["host"]

    pinning.pin(REBINDING, ("127.0.0.1",))
    elsewhere = await asyncio.create_task(other_request(), context=contextvars.Context())
    again = await asyncio.create_task(other_request(), context=contextvars.Context())
    assert (elsewhere, again, inner.calls) == ("127.0.0.101", "127.0.0.101", 1)


async def test_guard_pins_the_addresses_it_checked(monkeypatch: pytest.MonkeyPatch):
    answers = iter([["8.8.8.8"], ["127.0.0.2"]])

    async def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in next(answers)]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    guard = HostGuard(())
    assert await guard.check(f"https://{REBINDING}/v1") == f"https://{REBINDING}/v1"
    assert pinning.pinned(REBINDING) == ("8.8.8.8",)
    with pytest.raises(InvalidRequest, match="loopback"):  # the second answer is checked too
        await guard.check(f"https://{REBINDING}/v1")


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_client_connects_to_the_pinned_address(transport: str,
                                                     monkeypatch: pytest.MonkeyPatch):
    """The upstream client asks no resolver for a pinned host: with DNS saying 127.0.0.101
    (nothing listens there), the request still reaches the mock on the pinned 127.0.0.1."""
    inner = ChangingResolver()
    monkeypatch.setattr(pinning, "DefaultResolver", lambda: inner)

    real = socket.getaddrinfo

    def no_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        assert host != REBINDING, "a pinned host was looked up again"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    mock = MockUpstream()
    with ThreadedServer(mock.app()) as server:
        client = create_client(Settings(_env_file=None, upstream_transport=transport))
        try:
            pinning.pin(REBINDING, ("127.0.0.1",))
            response = await client.send_direct(
                "POST", f"http://{REBINDING}:{server.port}/v1/chat/completions",
                {"content-type": "application/json"},
                b'{"model": "m", "messages": []}')
            await response.aread()
        finally:
            await client.aclose()
    assert response.status_code == 200
    assert mock.requests[0].headers["host"] == f"{REBINDING}:{server.port}"
    assert inner.calls == 0


def test_trust_list_entries():
    guard = HostGuard(["vllm.svc", "127.0.0.1:8000", "http://backend:8000", "[::1]:9000"])
    assert guard.trusts("http", "vllm.svc", 1234)
    assert guard.trusts("https", "127.0.0.1", 8000)
    assert not guard.trusts("http", "127.0.0.1", 6379)
    assert guard.trusts("http", "backend", 8000)
    assert not guard.trusts("https", "backend", 8000)
    assert guard.trusts("http", "::1", 9000)
    with pytest.raises(ValueError, match="port"):
        HostGuard(["127.0.0.1:redis"])


def test_backend_is_trusted_on_its_exact_origin_only():
    settings = Settings(_env_file=None, vllm_url="http://127.0.0.1:8000/v1")
    guard = HostGuard(settings.trusted_host_set)
    assert guard.trusts("http", "127.0.0.1", 8000)
    assert not guard.trusts("http", "127.0.0.1", 6379)
    assert not guard.trusts("https", "127.0.0.1", 8000)

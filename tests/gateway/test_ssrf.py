"""The SSRF guard refuses internal custom hosts before any connection is made."""

from __future__ import annotations

import httpx
import pytest

from gateway.errors import InvalidRequest
from gateway.net.hostguard import HostGuard
from tests.support.mock_upstream import MockUpstream

REFUSED = [
    "http://127.0.0.2:9/v1",  # loopback, not trusted
    "http://10.0.0.5/v1",
    "http://172.16.3.4/v1",
    "http://192.168.1.1/v1",
    "http://169.254.169.254/latest/meta-data",
    "http://[::ffff:127.0.0.2]/v1",
    "http://[fe80::1]/v1",
    "http://[fd00::1]/v1",
    "http://100.64.0.1/v1",
    "http://0.0.0.0/v1",
    "http://2130706434/v1",  # 127.0.0.2 as one number
    "http://0x7f000002/v1",
    "http://0177.0.0.2/v1",
    "http://metadata.google.internal/computeMetadata/v1",
    "http://printer.local/v1",
    "http://user:pass@example.com/v1",
    "ftp://example.com/v1",
    "file:///etc/passwd",
    "http://exa mple.com/v1",
    "http://example.com./v1",
    "http://[2002:7f00:1::1]/v1",  # 6to4 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffd]/v1",  # Teredo, client 127.0.0.2
    "http://[fec0::1]/v1",  # site-local
    "http://192.0.0.8/v1",  # IETF protocol assignments
    "http://[::1",  # urlsplit raises ValueError
    "http://[127.0.0.2]:18791/v1",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_guard_refuses_internal_hosts(url):
    guard = HostGuard(frozenset({"localhost", "127.0.0.1", "::1"}))
    with pytest.raises(InvalidRequest, match="custom host refused"):
        await guard.check(url)


async def test_guard_allows_trusted_hosts():
    guard = HostGuard(frozenset({"127.0.0.1", "vllm.svc"}))
    assert await guard.check("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    assert await guard.check("http://vllm.svc:8000/v1") == "http://vllm.svc:8000/v1"


async def test_guard_allows_public_addresses_without_connecting():
    guard = HostGuard(frozenset())
    assert await guard.check("https://8.8.8.8/v1") == "https://8.8.8.8/v1"


@pytest.mark.parametrize(("url", "reason"), [
    ("http://[2002:7f00:1::1]/v1", "loopback"),
    ("http://[2002:a00:5::1]/v1", "private"),  # 6to4 of 10.0.0.5
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffd]/v1", "loopback"),
    ("http://[fec0::1]/v1", "site-local"),
    ("http://192.0.0.8/v1", "reserved"),
    ("http://[::1", "cannot be parsed"),
    ("http://[127.0.0.2]:18791/v1", "cannot be parsed"),
])
async def test_guard_names_the_reason(url, reason):
    with pytest.raises(InvalidRequest, match=reason) as caught:
        await HostGuard(frozenset()).check(url)
    assert caught.value.param == "x-portkey-custom-host"
    assert caught.value.status == 400


async def test_guard_allows_6to4_of_a_public_address_without_connecting():
    guard = HostGuard(frozenset())
    assert await guard.check("https://[2002:808:808::1]/v1") == "https://[2002:808:808::1]/v1"


@pytest.mark.parametrize("url", ["http://127.0.0.2:9/v1", "http://169.254.169.254/v1",
                                 "http://[::1", "http://[127.0.0.2]:18791/v1"])
def test_gateway_refuses_before_any_connection(gateway, mock: MockUpstream, url):
    response = httpx.post(f"{gateway.url}/v1/chat/completions",
                          headers={"x-portkey-provider": "openai", "x-portkey-custom-host": url},
                          json={"model": "m", "messages": []})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_custom_host"
    assert error["param"] == "x-portkey-custom-host"
    assert mock.requests == []


def test_trusted_hosts_setting_admits_another_loopback_host(start_gateway, mock_server):
    from tests.support.servers import ThreadedServer
    mock, _ = mock_server
    mock.reset()
    with ThreadedServer(mock.app(), host="127.0.0.2") as second:
        gateway = start_gateway(trusted_hosts="127.0.0.1,127.0.0.2")
        response = httpx.post(f"{gateway.url}/v1/chat/completions",
                              headers={"x-portkey-provider": "openai",
                                       "x-portkey-custom-host": f"{second.url}/v1"},
                              json={"model": "m", "messages": []})
    assert response.status_code == 200
    assert len(mock.requests) == 1

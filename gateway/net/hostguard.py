"""The SSRF guard for client-supplied custom hosts.

A custom host is refused when it names, or resolves to, a private, loopback, link-local,
reserved or cloud-metadata address, unless the trust list admits it. The check runs before any
connection is made, and the addresses it checked are pinned (gateway/net/pinning.py): the
connection that follows goes to exactly them, so a second DNS answer cannot move it.

The trust list (GATEWAY_TRUSTED_HOSTS, plus the bundled backend's exact origin) holds
entries of three forms: `host` (any port: the operator's explicit choice), `host:port`, and
`scheme://host:port` (exactly that origin).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from gateway.errors import InvalidRequest
from gateway.net import pinning

_METADATA_NAMES = frozenset({
    "metadata.google.internal", "metadata", "metadata.azure.com", "instance-data",
    "instance-data.ec2.internal",
})
_BLOCKED_SUFFIXES = (".local", ".internal", ".lan", ".home", ".corp", ".localhost", ".localdomain")
# Bare numbers, hex and dotted octal forms that resolvers turn into addresses.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}$", re.IGNORECASE)


def _refuse(reason: str) -> InvalidRequest:
    return InvalidRequest(f"custom host refused: {reason}", param="x-portkey-custom-host",
                          code="invalid_custom_host")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_custom_host(url: str) -> tuple[str, str]:
    """Return (normalised URL, lower-case host name) or raise InvalidRequest."""
    url, _, host, _ = parse_origin(url)
    return url, host


def origin_of(url: str) -> str:
    """`scheme://host:port` of an http(s) URL (the port always written); InvalidRequest."""
    _, scheme, host, port = parse_origin(url)
    return format_origin(scheme, host, port)


def format_origin(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def parse_origin(url: str) -> tuple[str, str, str, int]:
    """Return (normalised URL, scheme, lower-case host, port) or raise InvalidRequest."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise _refuse("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "http://[::1", "http://[127.0.0.2]:80"
        raise _refuse(f"the URL cannot be parsed ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise _refuse("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _refuse("credentials in the URL are not allowed")
    try:
        host = parts.hostname
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise _refuse(str(exc)) from None
    if not host:
        raise _refuse("the URL has no host")
    if "%" in host or not host.isascii() or host.endswith("."):
        raise _refuse("the host name is not a plain ASCII name")
    return url.rstrip("/"), parts.scheme, host.lower(), port


# Special-purpose blocks Python's `is_global` (3.11) still calls global.
_SPECIAL_NETWORKS = (
    (ipaddress.ip_network("100.64.0.0/10"), "carrier-grade NAT"),
    (ipaddress.ip_network("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (ipaddress.ip_network("fec0::/10"), "site-local"),
    (ipaddress.ip_network("64:ff9b:1::/48"), "reserved (local-use NAT64)"),
)


def _address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why `address` may not be a custom host's, or None when it is a global address.

    An IPv4 address inside an IPv6 one (mapped `::ffff:a.b.c.d`, 6to4 `2002:ab:cd::`, Teredo)
    is judged as itself too: `2002:7f00:1::1` reaches 127.0.0.1 through a 6to4 relay.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        for inner in embedded:
            problem = _address_problem(inner) if inner is not None else None
            if problem:
                return problem
        if address.ipv4_mapped:
            return None
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata)"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "reserved"
    for network, problem in _SPECIAL_NETWORKS:
        if address in network:
            return problem
    if not address.is_global:
        return "non-global"
    return None


class HostGuard:
    def __init__(self, trusted: Iterable[str]) -> None:
        self.hosts: set[str] = set()  # any port
        self.host_ports: set[tuple[str, int]] = set()  # any scheme
        self.origins: set[str] = set()  # exactly scheme://host:port
        for entry in trusted:
            self._add(entry.strip())

    def _add(self, entry: str) -> None:
        if not entry:
            return
        if "://" in entry:
            self.origins.add(origin_of(entry))
            return
        host, port = _host_and_port(entry)
        if port is None:
            self.hosts.add(host)
        else:
            self.host_ports.add((host, port))

    def trusts(self, scheme: str, host: str, port: int) -> bool:
        return (host in self.hosts or (host, port) in self.host_ports
                or format_origin(scheme, host, port) in self.origins)

    async def check(self, url: str) -> str:
        """Validate a custom host; returns the URL to use as the base URL.

        A host name that needed DNS is pinned, in this context, to the addresses checked.
        """
        url, scheme, host, port = parse_origin(url)
        if self.trusts(scheme, host, port):
            return url
        if host in _METADATA_NAMES or host.endswith(_BLOCKED_SUFFIXES) or host == "localhost":
            raise _refuse(f"'{host}' is an internal name")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            problem = _address_problem(literal)
            if problem:
                raise _refuse(f"{host} is a {problem} address")
            return url
        if _NUMERIC_HOST.match(host):
            raise _refuse(f"'{host}' is a numeric address form")
        pinning.pin(host, await self._check_resolved(host))
        return url

    async def _check_resolved(self, host: str) -> tuple[str, ...]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            raise _refuse(f"'{host}' does not resolve") from None
        addresses = []
        for info in infos:
            address = str(info[4][0])
            problem = _address_problem(ipaddress.ip_address(address))
            if problem:
                raise _refuse(f"'{host}' resolves to a {problem} address")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise _refuse(f"'{host}' does not resolve")
        return tuple(addresses)


def _host_and_port(entry: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address; lower-cased."""
    entry = entry.lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, None
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"trusted host '{entry}': the port must be a number from 1 to 65535")
    return host, None if port is None else int(port)

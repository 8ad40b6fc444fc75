"""The SSRF guard for client-supplied custom hosts.

A custom host is refused when it names, or resolves to, a private, loopback, link-local,
reserved or cloud-metadata address, unless its host name is in the trusted list. The check
runs before any connection is made.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from gateway.errors import InvalidRequest

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


def parse_custom_host(url: str) -> tuple[str, str]:
    """Return (normalised URL, lower-case host name) or raise InvalidRequest."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise _refuse("the URL contains whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _refuse("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _refuse("credentials in the URL are not allowed")
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises on an invalid port
    except ValueError as exc:
        raise _refuse(str(exc)) from None
    if not host:
        raise _refuse("the URL has no host")
    if "%" in host or not host.isascii() or host.endswith("."):
        raise _refuse("the host name is not a plain ASCII name")
    return url.rstrip("/"), host.lower()


def _address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata)"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "reserved"
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network(
            "100.64.0.0/10"):
        return "carrier-grade NAT"
    return None


class HostGuard:
    def __init__(self, trusted: frozenset[str]) -> None:
        self.trusted = trusted

    async def check(self, url: str) -> str:
        """Validate a custom host; returns the URL to use as the base URL."""
        url, host = parse_custom_host(url)
        if host in self.trusted:
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
        await self._check_resolved(host)
        return url

    async def _check_resolved(self, host: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            raise _refuse(f"'{host}' does not resolve") from None
        for info in infos:
            problem = _address_problem(ipaddress.ip_address(info[4][0]))
            if problem:
                raise _refuse(f"'{host}' resolves to a {problem} address")

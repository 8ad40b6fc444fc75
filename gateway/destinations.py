"""Secrets are bound to their destinations (README "Security").

A secret the gateway supplies itself (a virtual key's secret and options, a key in a saved
config, the bundled backend's key) goes only to the host stored with it or to the
provider's own URL. A client's custom host (`x-portkey-custom-host`, or `custom_host` in an
inline config) may receive one only when the virtual key lists that origin in its
`allowed_custom_hosts`; otherwise the attempt is refused (403) before any connection.
Gateway default keys (GATEWAY_VLLM_API_KEY) are simply not sent to a client's host.

Option values that are formatted into URLs must match their pattern (providers/options.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.errors import InvalidRequest, PermissionDenied
from gateway.hostguard import origin_of
from gateway.routing.leaf import Leaf
from providers.options import InvalidOption, check_url_options

CUSTOM_HOST_HEADER = "x-portkey-custom-host"


def check_client_host(leaf: Leaf, custom_host: str) -> None:
    """Refuse a client's custom host for a leaf that carries a stored secret (403)."""
    vk = leaf.virtual_key
    if vk is None and not leaf.stored_key:
        return
    origin = origin_of(custom_host)
    if vk is not None and (origin in vk.allowed_custom_hosts or (
            vk.custom_host is not None and origin == origin_of(vk.custom_host))):
        return
    whose = f"virtual key '{vk.slug}'" if vk is not None else "the saved config's api_key"
    hint = (f"; an admin may add {origin} to the virtual key's allowed_custom_hosts"
            if vk is not None else "")
    raise PermissionDenied(
        f"custom host not allowed: {whose} holds a stored secret, which goes only to the "
        f"host stored with it, never to a host named by the request ({origin}){hint}",
        param=CUSTOM_HOST_HEADER, code="custom_host_not_allowed")


def check_options(options: Mapping[str, str]) -> None:
    """400 naming the header when an option bound for a URL has an invalid value."""
    try:
        check_url_options(options)
    except InvalidOption as exc:
        raise InvalidRequest(str(exc), param=f"x-portkey-{exc.name}",
                             code="invalid_option") from None


def normalise_origins(urls: Iterable[str], param: str) -> list[str]:
    """Write-time check of `allowed_custom_hosts`: http(s) origins, normalised, no paths."""
    origins: list[str] = []
    for url in urls:
        try:
            origin = origin_of(url)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{param}: '{url}': {exc.message}", param=param,
                                 code="invalid_custom_host") from None
        given = url.rstrip("/").lower()
        if given not in (origin, origin.rsplit(":", 1)[0]):
            raise InvalidRequest(f"{param}: '{url}' must be an origin, scheme://host[:port], "
                                 "with no path, query or fragment", param=param,
                                 code="invalid_custom_host")
        if origin not in origins:
            origins.append(origin)
    return origins

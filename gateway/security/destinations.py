"""Secrets are bound to their destinations (README "Security").

A secret the gateway supplies itself (a virtual key's secret and options, a key in a saved
config, the bundled backend's key) goes only to the host stored with it or to the
provider's own URL. A client's custom host (`x-portkey-custom-host`, or `custom_host` in an
inline config) may receive one only when the virtual key lists that origin in its
`allowed_custom_hosts`; otherwise the attempt is refused (403) before any connection.
Gateway default keys (GATEWAY_VLLM_API_KEY) are simply not sent to a client's host.

A leaf carries a stored secret when it has a virtual key, or a saved config gave it an
`api_key` or any credential option (`azure_ad_token`, `aws_secret_access_key`, a service
account, ...). On such a leaf the stored options win over the client's, and a client value for
a destination option (where the request goes: a resource name, region, project, endpoint id,
deployment) is refused (403) unless it equals the stored one.

Option values that are formatted into URLs must match their pattern (providers/options.py).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from gateway.contracts.plan import Leaf
from gateway.errors import InvalidRequest, PermissionDenied
from gateway.net.hostguard import origin_of
from providers.openai_compat import HOSTS
from providers.options import (
    DESTINATION_OPTIONS,
    InvalidOption,
    canonical,
    check_url_options,
    is_credential_option,
)

CUSTOM_HOST_HEADER = "x-portkey-custom-host"


def _placeholders() -> frozenset[str]:
    """Every `{name}` in a provider's base URL (runpod's `{runpod-endpoint-id}`): only the
    OpenAI-compatible hosts' URLs are templates."""
    names: set[str] = set()
    for host in HOSTS.values():
        if host.base_url:
            names.update(field for _, field, _, _ in string.Formatter().parse(host.base_url)
                         if field)
    return frozenset(names)


DESTINATIONS = DESTINATION_OPTIONS | _placeholders()


def has_credential_option(options: Mapping[str, object]) -> bool:
    return any(is_credential_option(name) for name in options)


def carries_stored_secret(leaf: Leaf) -> bool:
    return leaf.virtual_key is not None or leaf.stored_key


def stored_options_win(stored: Mapping[str, str], client: Mapping[str, str]) -> dict[str, str]:
    """The options of a leaf that carries a stored secret: the stored ones over the client's.

    A client value for a destination option is refused (403, naming the header) unless it
    equals the stored value; other client options (anthropic-beta, openai-project, ...) pass
    where nothing is stored under the same option.
    """
    held: dict[str, str] = {}
    for name, value in stored.items():  # the canonical spelling wins, as the adapters read it
        if name == canonical(name) or canonical(name) not in held:
            held[canonical(name)] = value
    kept: dict[str, str] = {}
    for name, value in client.items():
        option = canonical(name)
        if option in DESTINATIONS and held.get(option) != value:
            raise PermissionDenied(
                f"x-portkey-{option} not allowed: this target holds a stored secret (a virtual "
                "key's, or a saved config's), which goes only where its own options send it; "
                "the request may not choose " + (
                    "a value other than the stored one" if option in held
                    else "a value the admin did not store"),
                param=f"x-portkey-{name}", code="option_not_allowed")
        if option not in held:
            kept[name] = value
    return {**kept, **stored}


def check_client_host(leaf: Leaf, custom_host: str) -> None:
    """Refuse a client's custom host for a leaf that carries a stored secret (403)."""
    vk = leaf.virtual_key
    if not carries_stored_secret(leaf):
        return
    origin = origin_of(custom_host)
    if vk is not None and (origin in vk.allowed_custom_hosts or (
            vk.custom_host is not None and origin == origin_of(vk.custom_host))):
        return
    whose = (f"virtual key '{vk.slug}'" if vk is not None
             else "the saved config's api_key or credential options")
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

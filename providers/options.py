"""Provider options that become part of an upstream URL, and the pattern each must match.

An option such as `x-portkey-azure-resource-name` is formatted into a host name or a path
(`https://{resource}.openai.azure.com`); a value like `127.0.0.2:5432/#` or `x@host:port/#`
would move the request to another host. Each such option has a strict pattern here, so the
gateway refuses the value (400, naming the header) before any URL is built, and the adapters
check again where they format it. Names are the `x-portkey-<name>` suffixes; an alias a
virtual key may store the option under maps to the same pattern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from providers.base import ConfigurationError

# A DNS label: what a resource name or region must be to sit inside a host name.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

URL_OPTIONS: dict[str, re.Pattern[str]] = {
    "azure-resource-name": _LABEL,
    "vertex-region": re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"),
    # Quoted into the path, but still no separators: `google.com:my-project` is valid.
    "vertex-project-id": re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}"),
    "aws-region": re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"),
    "runpod-endpoint-id": re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"),
}

# Other names an option may be stored under (the SDK's camelCase, config snake_case), the one
# table of them: providers/azure.py reads its options by these names (`names_of`).
ALIASES: dict[str, str] = {
    "resourceName": "azure-resource-name",
    "resource_name": "azure-resource-name",
    "deploymentName": "azure-deployment-id",
    "deployment_id": "azure-deployment-id",
    "deploymentId": "azure-deployment-id",
    "apiVersion": "azure-api-version",
    "api_version": "azure-api-version",
    "adToken": "azure-ad-token",
    "azure_ad_token": "azure-ad-token",
    "azureAuthMode": "azure-auth-mode",
    "azure_auth_mode": "azure-auth-mode",
}

# Options that decide where a request, and a stored secret with it, goes: every URL option,
# and the Azure deployment (which also decides the model). gateway/security/destinations.py
# adds each `{placeholder}` of a provider's base URL.
DESTINATION_OPTIONS = frozenset({*URL_OPTIONS, "azure-deployment-id"})

# Words that mark an option as a credential: aws-secret-access-key, aws-session-token,
# azure-ad-token / adToken, vertex-service-account-json (compared without case, `-` or `_`).
_CREDENTIAL_WORDS = ("secret", "token", "key", "password", "credential", "accountjson")


def canonical(name: str) -> str:
    """The x-portkey-<name> suffix an option name (or one of its aliases) stands for."""
    return ALIASES.get(name, name)


def names_of(option: str) -> tuple[str, ...]:
    """The other names `option` may be stored under, in the table's order."""
    return tuple(alias for alias, name in ALIASES.items() if name == option)


def is_credential_option(name: str) -> bool:
    """Whether an option (x-portkey-<name>, a config key, a stored option) holds a secret."""
    folded = name.lower().replace("-", "").replace("_", "")
    return any(word in folded for word in _CREDENTIAL_WORDS)

# A `{name}` placeholder without a row above must still be a single DNS label.
PLACEHOLDER_DEFAULT = _LABEL


class InvalidOption(ConfigurationError):
    """An option value that may not go into a URL; `name` is its canonical option name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"x-portkey-{name} has an invalid value: it must match "
                         f"{URL_OPTIONS.get(name, PLACEHOLDER_DEFAULT).pattern}")
        self.name = name


def check_value(name: str, value: str) -> str:
    """The value, if the option may carry it into a URL; raises InvalidOption otherwise."""
    canonical = ALIASES.get(name, name)
    pattern = URL_OPTIONS.get(canonical, PLACEHOLDER_DEFAULT)
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise InvalidOption(canonical)
    return value


def check_url_options(options: Mapping[str, object]) -> None:
    """Raise InvalidOption for the first URL-bound option whose value fails its pattern."""
    for name, value in options.items():
        canonical = ALIASES.get(name, name)
        if canonical in URL_OPTIONS and (
                not isinstance(value, str) or URL_OPTIONS[canonical].fullmatch(value) is None):
            raise InvalidOption(canonical)

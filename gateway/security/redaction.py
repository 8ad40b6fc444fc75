"""Redaction: known secrets are cut out of upstream-originated error text.

An upstream may echo the key it was sent (a 401 quoting the Authorization header, a 400
quoting the body). Every GatewayError leaving an attempt, and every error event of a stream,
passes `Secrets.scrub` once, where it is made; the client, the usage row (`error_message`,
`attempts`), logs, the console and trace spans all read the scrubbed text.

How an echo is found (any ASCII case, base64 forms) is gateway/redact's; this module knows
which values are secret for an attempt.

Gathering the secrets costs something, so it happens only when an error needs scrubbing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from pydantic import SecretStr

from gateway.contracts.request import CREDENTIAL_HEADERS
from gateway.errors import GatewayError
from gateway.redact.echoes import MIN_ECHO, MIN_SECRET, REDACTED, redact
from providers.options import is_credential_option

__all__ = ["MAX_ERROR_TEXT", "MIN_ECHO", "MIN_SECRET", "REDACTED", "Secrets", "redact",
           "settings_secrets"]

if TYPE_CHECKING:
    from gateway.contracts.plan import Leaf
    from gateway.contracts.request import ParsedRequest
    from gateway.settings import Settings

# Upstream error text is cut to this many characters before it is scrubbed: scrubbing is linear
# but not cheap (about 0.5 s a MiB with base64 forms), and it runs on the event loop, so an
# upstream must not be able to buy that time with a huge error message.
MAX_ERROR_TEXT = 4096
_TRUNCATED = " [truncated]"
# Client headers that carry credentials.
_SECRET_HEADERS = (*sorted(CREDENTIAL_HEADERS), "x-portkey-api-key")
# A PEM private key inside a service-account JSON that does not parse.
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
                  re.DOTALL)


@dataclass(slots=True)
class Secrets:
    """What one attempt knows to be secret; gathered only when an error is scrubbed."""

    settings: Settings
    request: ParsedRequest
    leaf: Leaf
    # The bearer token minted from a service account's JSON, when one was (net.service_accounts).
    minted: Callable[[str], str | None]

    def scrub(self, exc: GatewayError) -> GatewayError:
        """Redact `exc` in place (message, param, code, headers) and return it."""
        known = self.values()
        exc.message = redact(_cut(exc.message), known)
        exc.args = (exc.message,)
        if exc.param:
            exc.param = redact(_cut(exc.param), known)
        if isinstance(exc.code, str):
            exc.code = redact(_cut(exc.code), known)
        exc.headers = {name: redact(_cut(value), known) for name, value in exc.headers.items()}
        return exc

    def values(self) -> list[str]:
        """Every secret this attempt could have sent or been sent, longest first."""
        found = {value for value in self._gather() if value and len(value) >= MIN_SECRET}
        return sorted(found, key=len, reverse=True)

    def _gather(self) -> Iterator[str]:
        headers = self.request.headers
        for name in _SECRET_HEADERS:
            value = headers.get(name)
            if value:
                yield value
                yield value.partition(" ")[2].strip()  # "Bearer <token>"
        yield from _option_secrets(self.request.options)
        leaf = self.leaf
        if leaf.api_key:
            yield leaf.api_key
        yield from _option_secrets(leaf.options)
        if leaf.virtual_key is not None:
            if leaf.virtual_key.secret:
                yield leaf.virtual_key.secret
            yield from _option_secrets(leaf.virtual_key.options)
        for name, value in leaf.options.items():
            if "account-json" in name and value:
                token = self.minted(value)
                if token:
                    yield token
        yield from settings_secrets(self.settings)


def settings_secrets(settings: Settings) -> Iterator[str]:
    """Every SecretStr setting (admin token, master keys, backend key, ...) and default key."""
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            yield value.get_secret_value()
    yield from settings.default_keys.values()


def _option_secrets(options: object) -> Iterator[str]:
    if not hasattr(options, "items"):
        return
    for name, value in options.items():
        if not isinstance(value, str) or not is_credential_option(name):
            continue
        if value.lstrip().startswith("{"):
            # A JSON value (a service account's): its private key is the secret, never the
            # whole text, whose field names and email would redact an error about them.
            yield from _private_keys(value)
        else:
            yield value


def _private_keys(value: str) -> Iterator[str]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        yield from _PEM.findall(value)  # malformed: whatever PEM key it holds
        return
    key = data.get("private_key") if isinstance(data, dict) else None
    if isinstance(key, str):
        yield key


def _cut(text: str) -> str:
    """At most MAX_ERROR_TEXT characters (a secret cut at the end keeps under MIN_ECHO of its
    characters only when fewer than that fit, as with any partial echo)."""
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + _TRUNCATED

"""Redaction: known secrets are cut out of upstream-originated error text.

An upstream may echo the key it was sent (a 401 quoting the Authorization header, a 400
quoting the body). Every GatewayError leaving an attempt, and every error event of a stream,
passes `Secrets.scrub` once, where it is made; the client, the usage row (`error_message`,
`attempts`), logs, the console and trace spans all read the scrubbed text.

Gathering the secrets costs something, so it happens only when an error needs scrubbing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from pydantic import SecretStr

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.credentials import ServiceAccountTokens
    from gateway.routing.leaf import Leaf
    from gateway.settings import Settings

REDACTED = "[REDACTED]"
# An echo this long of any known secret is removed (a key's first chars, "****" and its last
# four, as providers print them, stay).
MIN_ECHO = 12
# Values shorter than this are not treated as secrets: redacting "test" would garble messages.
MIN_SECRET = 8
# Client headers that carry credentials.
_SECRET_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key",
                   "x-goog-api-key", "x-portkey-api-key", "cookie")
# Provider options (x-portkey-<name>, or a virtual key's stored options) holding credentials:
# aws-secret-access-key, aws-session-token, azure-ad-token / adToken, vertex-service-account-json.
_SECRET_OPTION_WORDS = ("secret", "token", "key", "password", "credential", "account-json")


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret, and every echo of MIN_ECHO chars or more of one, replaced."""
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            spans.extend(_echoes(text, secret))
    if not spans:
        return text
    spans.sort()
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts, last = [], 0
    for start, end in merged:
        parts += (text[last:start], REDACTED)
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _echoes(text: str, secret: str) -> Iterator[tuple[int, int]]:
    """Spans of `text` equal to a substring of `secret` at least MIN_ECHO long (or all of it).

    Any such substring contains a whole aligned block of MIN_ECHO // 2 chars of the secret,
    so only those blocks are searched for (in C, by str.find), then each hit is widened.
    """
    if len(secret) < MIN_ECHO:
        at = text.find(secret)
        while at != -1:
            yield at, at + len(secret)
            at = text.find(secret, at + len(secret))
        return
    block = MIN_ECHO // 2
    for offset in range(0, len(secret) - block + 1, block):
        at = text.find(secret[offset:offset + block])
        while at != -1:
            start, first = at, offset
            while start and first and text[start - 1] == secret[first - 1]:
                start, first = start - 1, first - 1
            end, last = at + block, offset + block
            while end < len(text) and last < len(secret) and text[end] == secret[last]:
                end, last = end + 1, last + 1
            if end - start >= MIN_ECHO:
                yield start, end
            at = text.find(secret[offset:offset + block], at + 1)


@dataclass(slots=True)
class Secrets:
    """What one attempt knows to be secret; gathered only when an error is scrubbed."""

    settings: Settings
    ctx: RequestContext
    leaf: Leaf
    tokens: ServiceAccountTokens

    def scrub(self, exc: GatewayError) -> GatewayError:
        """Redact `exc` in place (message, param, code, headers) and return it."""
        known = self.values()
        exc.message = redact(exc.message, known)
        exc.args = (exc.message,)
        if exc.param:
            exc.param = redact(exc.param, known)
        if isinstance(exc.code, str):
            exc.code = redact(exc.code, known)
        exc.headers = {name: redact(value, known) for name, value in exc.headers.items()}
        return exc

    def values(self) -> list[str]:
        """Every secret this attempt could have sent or been sent, longest first."""
        found = {value for value in self._gather() if value and len(value) >= MIN_SECRET}
        return sorted(found, key=len, reverse=True)

    def _gather(self) -> Iterator[str]:
        headers = self.ctx.headers
        for name in _SECRET_HEADERS:
            value = headers.get(name)
            if value:
                yield value
                yield value.partition(" ")[2].strip()  # "Bearer <token>"
        yield from _option_secrets(self.ctx.options)
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
                token = self.tokens.minted(value)
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
        if not isinstance(value, str) or not any(
                word in name.lower() for word in _SECRET_OPTION_WORDS):
            continue
        private_key = _private_key(value)
        # A service account's JSON: its private key is the secret, not its email or project.
        yield private_key if private_key is not None else value


def _private_key(value: str) -> str | None:
    if not value.lstrip().startswith("{"):
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    key = data.get("private_key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else None

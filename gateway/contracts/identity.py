"""Resolve: who is calling (gateway API key), and what their virtual keys and saved configs hold.

The request path talks to a `Resolver`. Without a key store (`NoKeyStore`) every call is
anonymous, and virtual keys or saved configs cannot be used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gateway.errors import AuthenticationFailed, InvalidRequest
from gateway.guardrails.hooks import NO_HOOKS, HookSet

# Which version of a prompt: a number, "latest" (published or not), or None (the published one).
PromptPin = int | Literal["latest"] | None


@dataclass(frozen=True, slots=True)
class Limits:
    """Limit fields shared by API keys and virtual keys; None means unlimited."""

    rpm: int | None = None
    rph: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    budget_usd: float | None = None
    budget_period: str | None = None  # "daily" | "weekly" | "monthly" | None (total)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated gateway API key."""

    id: str
    name: str
    scopes: frozenset[str]
    default_config: str | None = None
    limits: Limits = Limits()
    # Allow-lists (None: unrestricted). Virtual keys and configs hold both the id and the
    # slug of each entry the admin named; models are matched exactly (gateway/security/access.py).
    allowed_virtual_keys: frozenset[str] | None = None
    allowed_configs: frozenset[str] | None = None
    allowed_models: frozenset[str] | None = None
    # Guardrails the operator set on the key: every request made with it runs them.
    default_hooks: HookSet = NO_HOOKS


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A stored provider secret, decrypted, with the provider options beside it."""

    id: str
    slug: str
    provider: str
    secret: str | None = field(repr=False)  # never in logs, even by accident
    options: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    custom_host: str | None = None
    allowed_models: frozenset[str] | None = None
    # Origins (scheme://host:port) a client's custom host may name with this key's secret.
    allowed_custom_hosts: frozenset[str] = frozenset()
    limits: Limits = Limits()
    prices: Mapping[str, Any] = field(default_factory=dict)
    # Guardrails the operator set on the key: every request through it runs them.
    default_hooks: HookSet = NO_HOOKS


class PromptTemplate(Protocol):
    """A compiled prompt template (gateway/store/templates.py)."""

    def render(self, variables: Mapping[str, Any]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class StoredPrompt:
    """One version of a prompt template, with what it routes by (at most one of the three)."""

    id: str
    slug: str
    version: int
    template: PromptTemplate
    model: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    provider: str | None = None
    virtual_key: str | None = None
    config: str | None = None


class Resolver(Protocol):
    async def authenticate(self, api_key: str | None) -> Principal | None:
        """The caller's principal; None when anonymous calls are allowed. Raises 401."""

    async def virtual_key(self, slug: str) -> VirtualKey:
        """A usable virtual key by slug or id. Raises 401/404 for unknown, revoked, expired."""

    async def saved_config(self, config_id: str) -> Mapping[str, Any]:
        """A saved config's JSON by id or slug (`pc-...`). Raises 404."""

    async def prompt(self, ref: str, pin: PromptPin) -> StoredPrompt:
        """A prompt's pinned (or published) version by id or slug (`pp-...`). Raises 404."""


class NoKeyStore:
    """The resolver used before any key store is configured: anonymous only."""

    async def authenticate(self, api_key: str | None) -> Principal | None:
        return None

    async def virtual_key(self, slug: str) -> VirtualKey:
        raise AuthenticationFailed("virtual keys need a gateway API key and a key store",
                                   param="x-portkey-virtual-key")

    async def saved_config(self, config_id: str) -> Mapping[str, Any]:
        raise InvalidRequest(f"saved config '{config_id}' cannot be used without a key store",
                             param="x-portkey-config")

    async def prompt(self, ref: str, pin: PromptPin) -> StoredPrompt:
        raise InvalidRequest(f"prompt '{ref}' cannot be used without a key store",
                             code="no_key_store")

"""The database-backed `Resolver`: who is calling, and what their keys and configs hold.

Every lookup goes through a per-process TTL cache (`GATEWAY_KEY_CACHE_TTL`, seconds), so the
steady state makes no database round trip per request, and a revocation or expiry reaches every
worker within that many seconds. Writes made through this process clear the cache at once; with
Redis, writes made through any replica's admin API clear every replica's cache as soon as the
message arrives (gateway/store/broadcast.py), and the TTL stays the bound while Redis is away.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from gateway.contracts.identity import Principal, PromptPin, StoredPrompt, VirtualKey
from gateway.db.engine import Database
from gateway.db.models import ApiKeyRow, ConfigRow, VirtualKeyRow
from gateway.db.types import utcnow
from gateway.errors import AuthenticationFailed, NotFound, ServiceUnavailable
from gateway.guardrails.hooks import HookSet
from gateway.settings import Settings
from gateway.store import key_guardrails, prompts, tokens
from gateway.store.crypto import SecretBox
from gateway.store.key_store import database_errors
from gateway.store.limits import limits_of
from gateway.store.ttl_cache import TTLCache
from gateway.store.virtual_keys import sealed_secret

_API_KEY = "x-portkey-api-key"
_VIRTUAL_KEY = "x-portkey-virtual-key"
log = logging.getLogger("gateway.keys")


@dataclass(frozen=True, slots=True)
class _Found:
    """A cached row's verdict: the usable value, or why it is unusable."""

    value: Any
    status: str
    expires_at: datetime | None
    key_hash: str = ""
    # Why the key's default guardrails cannot run (it is refused rather than run without).
    broken_guardrails: bool = False


class DatabaseResolver:
    def __init__(self, db: Database, box: SecretBox, settings: Settings) -> None:
        self.db = db
        self.box = box
        self.require_api_key = settings.require_api_key
        self._cache: TTLCache[Any] = TTLCache(settings.key_cache_ttl,
                                              stale_on=(ServiceUnavailable,))

    def invalidate(self) -> None:
        self._cache.clear()

    def expire(self) -> None:
        """Reload every entry before its next use (served stale while the database is down)."""
        self._cache.expire()

    async def _cached(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        async def guarded() -> Any:
            with database_errors():
                return await load()
        return await self._cache.get(key, guarded)

    async def authenticate(self, api_key: str | None) -> Principal | None:
        if api_key is None:
            if await self._closed():
                raise AuthenticationFailed(
                    f"missing gateway API key: send it in the {_API_KEY} header",
                    param=_API_KEY, code="missing_api_key")
            return None
        key_hash = tokens.hash_key(api_key)
        found: _Found | None = await self._cached(
            "api:" + key_hash, lambda: self._load_api_key(key_hash))
        if found is None and not await self._closed():
            return None  # an open gateway ignores keys it does not know (SDKs always send one)
        if found is None or not tokens.matches(api_key, found.key_hash):
            raise AuthenticationFailed(f"invalid gateway API key in {_API_KEY}",
                                       param=_API_KEY, code="invalid_api_key")
        _check_usable(found, "gateway API key", _API_KEY, "api_key")
        principal: Principal = found.value
        return principal

    async def virtual_key(self, slug: str) -> VirtualKey:
        found: _Found | None = await self._cached(
            "vk:" + slug, lambda: self._load_virtual_key(slug))
        if found is None:
            raise AuthenticationFailed(f"virtual key '{slug}' not found", param=_VIRTUAL_KEY,
                                       code="invalid_virtual_key")
        _check_usable(found, f"virtual key '{slug}'", _VIRTUAL_KEY, "virtual_key")
        vk: VirtualKey = found.value
        return vk

    async def saved_config(self, config_id: str) -> Mapping[str, Any]:
        config: dict[str, Any] | None = await self._cached(
            "config:" + config_id, lambda: self._load_config(config_id))
        if config is None:
            raise NotFound(f"saved config '{config_id}' not found", param="x-portkey-config",
                           code="config_not_found")
        return copy.deepcopy(config)  # callers may resolve or rewrite it in place

    async def prompt(self, ref: str, pin: PromptPin) -> StoredPrompt:
        found: StoredPrompt = await self._cached(f"prompt:{ref}@{pin}",
                                                 lambda: self._load_prompt(ref, pin))
        return found  # frozen, and rendering copies the messages

    async def _closed(self) -> bool:
        """Whether /v1/* demands a key: required by setting, or once any API key exists."""
        return self.require_api_key or await self._cached("any-api-key", self._any_api_key)

    async def _any_api_key(self) -> bool:
        async with self.db.sessions() as session:
            return (await session.execute(select(ApiKeyRow.id).limit(1))).first() is not None

    async def _load_api_key(self, key_hash: str) -> _Found | None:
        async with self.db.sessions() as session:
            row = (await session.execute(
                select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash))).scalar_one_or_none()
            configs = None if row is None else await _both_names(session, row.allowed_configs)
        if row is None:
            return None
        hooks, broken = _default_hooks(row, f"API key '{row.id}'")
        principal = Principal(
            id=row.id, name=row.name, scopes=frozenset(row.scopes),
            default_config=row.default_config, limits=limits_of(row),
            allowed_virtual_keys=_frozen(row.allowed_virtual_keys), allowed_configs=configs,
            allowed_models=_frozen(row.allowed_models), default_hooks=hooks)
        return _Found(principal, row.status, row.expires_at, row.key_hash, broken)

    async def _load_virtual_key(self, ref: str) -> _Found | None:
        async with self.db.sessions() as session:
            row = (await session.execute(select(VirtualKeyRow).where(
                or_(VirtualKeyRow.slug == ref, VirtualKeyRow.id == ref)))).scalar_one_or_none()
        if row is None:
            return None
        sealed = sealed_secret(row)
        secret = None if sealed is None else self.box.open(sealed, f"virtual key '{row.slug}'")
        hooks, broken = _default_hooks(row, f"virtual key '{row.slug}'")
        vk = VirtualKey(
            id=row.id, slug=row.slug, provider=row.provider, secret=secret,
            options=dict(row.options or {}), custom_host=row.custom_host,
            allowed_models=None if row.allowed_models is None else frozenset(row.allowed_models),
            allowed_custom_hosts=frozenset(row.allowed_custom_hosts or ()),
            limits=limits_of(row), default_hooks=hooks)
        return _Found(vk, row.status, row.expires_at, broken_guardrails=broken)

    async def _load_config(self, ref: str) -> dict[str, Any] | None:
        async with self.db.sessions() as session:
            row = (await session.execute(select(ConfigRow).where(
                or_(ConfigRow.slug == ref, ConfigRow.id == ref),
                ConfigRow.status == "active"))).scalar_one_or_none()
        return None if row is None else row.config

    async def _load_prompt(self, ref: str, pin: PromptPin) -> StoredPrompt:
        async with self.db.sessions() as session:
            return await prompts.load(session, ref, pin)


def _default_hooks(row: key_guardrails.GuardedRow, what: str) -> tuple[HookSet, bool]:
    """The key's default guardrails, parsed once per cache fill; broken ones are logged (they
    may name webhook headers, so the client is told only that an admin must fix them)."""
    hooks, problems = key_guardrails.hooks_of(row)
    if problems:
        log.error("%s: its default guardrails cannot run, so it is refused until an admin "
                  "saves valid ones: %s", what, "; ".join(problems))
    return hooks, bool(problems)


def _frozen(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


async def _both_names(session: Any, refs: list[str] | None) -> frozenset[str] | None:
    """The saved configs an API key names, each by id and by slug, whichever was given."""
    if not refs:
        return _frozen(refs)
    rows = await session.execute(select(ConfigRow.id, ConfigRow.slug).where(
        or_(ConfigRow.slug.in_(refs), ConfigRow.id.in_(refs))))
    return frozenset(refs).union(*((row.id, row.slug) for row in rows))


def _check_usable(found: _Found, what: str, param: str, code: str) -> None:
    if found.status != "active":
        raise AuthenticationFailed(f"{what} has been revoked", param=param,
                                   code=f"{code}_revoked")
    if found.expires_at is not None and found.expires_at <= utcnow():
        raise AuthenticationFailed(f"{what} expired at {found.expires_at.isoformat()}",
                                   param=param, code=f"{code}_expired")
    if found.broken_guardrails:
        # Fail closed: running the request without the operator's guardrails would be silent.
        raise ServiceUnavailable(f"{what} has default guardrails this gateway cannot run; "
                                 "an admin must save valid ones", param=param,
                                 code="invalid_key_guardrails")

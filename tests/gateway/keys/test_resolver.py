"""The database resolver on its own: cached lookups, invalidation, saved configs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from gateway.errors import AuthenticationFailed, NotFound
from gateway.settings import Settings
from gateway.store import api_keys, configs, virtual_keys
from gateway.store.key_store import KeyStore
from gateway.store.resolver import DatabaseResolver
from gateway.store.setup import open_key_store


@pytest.fixture
async def keys(database_url: str, master_key: str) -> AsyncIterator[
        tuple[KeyStore, DatabaseResolver, list[str]]]:
    settings = Settings(_env_file=None, database_url=database_url, master_key=master_key,
                        auto_migrate=True, key_cache_ttl=60)
    db, store, resolver = await open_key_store(settings)
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    yield store, resolver, statements
    await db.close()


async def test_steady_state_makes_no_database_round_trip(keys: Any):
    store, resolver, statements = keys
    _, key = await api_keys.create(store, {"name": "a"})
    vk = await virtual_keys.create(store, {"name": "v", "provider": "openai", "key": "sk-x1"})
    await resolver.authenticate(key)
    await resolver.virtual_key(vk.slug)
    statements.clear()
    for _ in range(50):
        principal = await resolver.authenticate(key)
        assert (await resolver.virtual_key(vk.slug)).secret == "sk-x1"
    assert principal is not None and principal.scopes == frozenset({"inference"})
    assert statements == []
    assert "sk-x1" not in repr(await resolver.virtual_key(vk.slug))


async def test_writes_through_the_store_invalidate_at_once(keys: Any):
    store, resolver, _ = keys
    row, key = await api_keys.create(store, {"name": "a"})
    assert await resolver.authenticate(key) is not None
    await api_keys.revoke(store, row.id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await resolver.authenticate(key)


async def test_saved_config_by_slug_or_id(keys: Any):
    store, resolver, _ = keys
    row = await configs.create(store, {"name": "c", "config": {"provider": "openai",
                                                             "retry": {"attempts": 2}}})
    by_slug = await resolver.saved_config(row.slug)
    assert by_slug == await resolver.saved_config(row.id) == row.config
    by_slug["retry"]["attempts"] = 99  # callers get their own copy
    assert (await resolver.saved_config(row.slug))["retry"]["attempts"] == 2
    await configs.update(store, row.slug, {"config": {"provider": "anyscale"}})
    assert await resolver.saved_config(row.slug) == {"provider": "anyscale"}
    await configs.update(store, row.slug, {"status": "archived"})
    with pytest.raises(NotFound, match=f"saved config '{row.slug}' not found"):
        await resolver.saved_config(row.slug)

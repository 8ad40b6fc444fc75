"""Open the database and the key store in the app's lifespan, and close them after."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError

from gateway.db import migrate
from gateway.db.engine import Database, open_database
from gateway.settings import Settings
from gateway.store.crypto import SecretBox
from gateway.store.key_store import KeyStore
from gateway.store.resolver import DatabaseResolver

log = logging.getLogger("gateway.keys")


class SchemaOutOfDate(RuntimeError):
    """The database has not been migrated to the revision this code needs."""


async def open_key_store(settings: Settings) -> tuple[Database, KeyStore, DatabaseResolver]:
    """Database, key store and resolver; migrates first when the settings ask for it."""
    box = SecretBox.from_settings(settings)  # a malformed master key stops start-up here
    db = open_database(settings)
    try:
        if auto_migrates(settings, db):
            await migrate.upgrade_if_behind(db)
        else:
            await _check_schema(db)
    except BaseException:
        await db.close()
        raise
    resolver = DatabaseResolver(db, box, settings)
    if not box.can_seal:
        log.info("no GATEWAY_MASTER_KEY: virtual keys cannot be created")
    return db, KeyStore(db, box, resolver.invalidate), resolver


def auto_migrates(settings: Settings, db: Database) -> bool:
    """GATEWAY_AUTO_MIGRATE when set; by default only SQLite (the embedded database)."""
    return settings.auto_migrate if settings.auto_migrate is not None else db.is_sqlite


async def needs_migration(settings: Settings) -> bool:
    """Whether start-up would migrate: auto-migration applies and the schema is behind.
    False when the database cannot be reached (start-up reports that itself)."""
    db = open_database(settings)
    try:
        return auto_migrates(settings, db) and await migrate.behind(db)
    except (DBAPIError, OSError):
        return False
    finally:
        await db.close()


async def _check_schema(db: Database) -> None:
    try:
        current = await migrate.current(db)
    except (DBAPIError, OSError) as exc:
        # Serve anyway: requests that need the key store answer 503 until it is back.
        log.warning("database unreachable at start-up: %s", type(exc).__name__)
        return
    head = migrate.head()
    if current != head:
        raise SchemaOutOfDate(f"the database is at migration {current or '(none)'} but this "
                              f"gateway needs {head}: run `python -m gateway migrate`")

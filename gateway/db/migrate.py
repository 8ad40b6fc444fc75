"""Apply the Alembic migrations under `migrations/` to the configured database.

Alembic (with Mako) costs a serving process about 10 MB, so it loads only to change the
schema: the revision a database is at is read with a plain query, and the head revision
from the migration files themselves. A gateway whose schema is current never imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
_VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    from alembic import command

    async with database.engine.begin() as connection:
        await connection.run_sync(
            lambda sync: command.upgrade(alembic_config(sync), revision))


async def behind(database: Database) -> bool:
    """Whether the database is not at the head revision (never migrated counts)."""
    return await current(database) != head()


async def upgrade_if_behind(database: Database) -> bool:
    """Upgrade to head unless the database is there already; True when it migrated."""
    if not await behind(database):
        return False
    await upgrade(database)
    return True


async def downgrade(database: Database, revision: str = "base") -> None:
    from alembic import command

    async with database.engine.begin() as connection:
        await connection.run_sync(
            lambda sync: command.downgrade(alembic_config(sync), revision))


def _read_revision(sync: Connection) -> str | None:
    if not sa.inspect(sync).has_table(_VERSION_TABLE):
        return None
    versions = sync.execute(sa.text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalars().all()
    if len(versions) > 1:
        raise RuntimeError(f"the database has several migration heads: {sorted(versions)}")
    return versions[0] if versions else None


async def current(database: Database) -> str | None:
    """The revision the database is at; None when it has never been migrated."""
    async with database.engine.connect() as connection:
        return await connection.run_sync(_read_revision)


def _assignments(path: Path) -> dict[str, object]:
    """The module-level `name = literal` assignments of a migration file."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and node.value is not None:
            try:
                found[target.id] = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError):
                continue
    return found


def head() -> str | None:
    """The revision no migration builds on (the files' `revision` and `down_revision`)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        names = _assignments(path)
        if isinstance(names.get("revision"), str):
            revisions.add(str(names["revision"]))
            down = names.get("down_revision")
            if isinstance(down, str):
                parents.add(down)
            elif isinstance(down, tuple | list):
                parents.update(str(each) for each in down)
    if not revisions:
        raise RuntimeError(f"no migrations found under {MIGRATIONS}")
    heads = revisions - parents
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {sorted(heads)}")
    return heads.pop() if heads else None

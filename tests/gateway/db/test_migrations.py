"""The schema lives in migrations/: empty -> head -> base -> head, on Postgres and SQLite."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gateway.cli.main import main
from gateway.db import migrate
from gateway.db.engine import open_database
from gateway.db.models import Base
from gateway.settings import Settings
from gateway.usage import table as _usage_table  # noqa: F401 - registers request_logs
from tests.support.servers import free_port

KEY_TABLES = {"api_keys", "virtual_keys", "configs", "config_versions", "request_logs",
              "prompts", "prompt_versions", "responses"}


def tables(url: str) -> set[str]:
    async def names() -> set[str]:
        db = open_database(Settings(_env_file=None, database_url=url))
        try:
            async with db.engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await db.close()
    return asyncio.run(names())


def test_upgrade_from_empty_down_to_base_and_up_again(database_url: str, monkeypatch,
                                                      capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert not tables(database_url) & KEY_TABLES
    assert main(["migrate"]) == 0
    assert f'"revision": "{migrate.head()}"' in capsys.readouterr().out
    assert tables(database_url) >= KEY_TABLES
    assert main(["migrate", "--down", "base"]) == 0
    assert not tables(database_url) & KEY_TABLES
    assert main(["migrate"]) == 0
    assert tables(database_url) >= KEY_TABLES


def _not_partition(obj: object, name: str | None, type_: str, *_: object) -> bool:
    """request_logs' partitions (Postgres) are tables the gateway makes, not the model."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
    return not (table or "").startswith("request_logs_")


def test_models_match_the_migrations(database_url: str):
    async def diff() -> list[object]:
        db = open_database(Settings(_env_file=None, database_url=database_url))
        try:
            await migrate.upgrade(db)
            async with db.engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"include_object": _not_partition}),
                        Base.metadata))
        finally:
            await db.close()
    assert asyncio.run(diff()) == []


def test_migrate_reports_an_unreachable_database(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    assert main(["migrate"]) == 1
    assert capsys.readouterr().err.startswith("error: database:")


def test_cli_refuses_an_unmigrated_postgres(monkeypatch, capsys):
    from tests.support.databases import require_postgres
    monkeypatch.setenv("DATABASE_URL", require_postgres())
    monkeypatch.delenv("GATEWAY_AUTO_MIGRATE", raising=False)
    assert main(["keys", "list"]) == 1
    assert "run `python -m gateway migrate`" in capsys.readouterr().err


def test_head_read_from_the_files_is_alembics_head():
    from alembic.script import ScriptDirectory
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    assert migrate.head() == scripts.get_current_head()
    assert migrate.head() is not None


def test_current_and_upgrade_if_behind_agree_with_alembic(database_url: str):
    async def alembic_current(db) -> str | None:
        async with db.engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision())

    async def run() -> None:
        db = open_database(Settings(_env_file=None, database_url=database_url))
        try:
            assert await migrate.current(db) is None
            await migrate.upgrade(db, "0001_keys")
            assert await migrate.current(db) == await alembic_current(db) == "0001_keys"
            assert await migrate.upgrade_if_behind(db) is True
            assert await migrate.current(db) == await alembic_current(db) == migrate.head()
            assert await migrate.upgrade_if_behind(db) is False
        finally:
            await db.close()
    asyncio.run(run())

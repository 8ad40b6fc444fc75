"""Alembic environment: async, with the URL from the gateway's settings, never alembic.ini.

`gateway.db.migrate` hands in an open connection (`config.attributes["connection"]`); the
plain `alembic` command gets an engine built from `Settings().database_url`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from gateway.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    from gateway.db.engine import open_database
    from gateway.settings import Settings

    database = open_database(Settings())
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await database.close()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `python -m gateway "
                     "migrate` against a database")

connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_with_own_engine())

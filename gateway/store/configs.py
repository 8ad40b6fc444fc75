"""Saved configs (`pc-...`): a routing config stored under a slug, every version kept."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from gateway.db.models import ConfigRow, ConfigVersionRow
from gateway.errors import InvalidRequest
from gateway.routing.config import validate_saved
from gateway.store.key_store import (
    KeyStore,
    find,
    iso,
    new_id,
    parse_payload,
    random_suffix,
    slugify,
)


class CreateConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")  # is_default, workspace_id
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any]


class UpdateConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the SDK repeats the slug in the body
    name: str | None = Field(None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    status: Literal["active", "archived"] | None = None


def view(row: ConfigRow) -> dict[str, Any]:
    return {
        "id": row.id, "slug": row.slug, "object": "config", "name": row.name,
        "config": row.config, "version_id": row.version_id, "status": row.status,
        "created_at": iso(row.created_at), "last_updated_at": iso(row.updated_at),
    }


def version_view(row: ConfigVersionRow) -> dict[str, Any]:
    return {"id": row.id, "object": "config-version", "config_id": row.config_id,
            "version": row.version, "config": row.config, "created_at": iso(row.created_at)}


async def create(store: KeyStore, data: Any) -> ConfigRow:
    payload = parse_payload(CreateConfig, data)
    validate_saved(payload.config)  # the validator requests use: a bad config is never saved
    config_id, version_id = new_id(), new_id()
    row = ConfigRow(id=config_id, name=payload.name, config=payload.config,
                    version_id=version_id, status="active",
                    slug=f"pc-{slugify(payload.name, 32)}-{random_suffix()}")
    async with store.db.sessions() as session, session.begin():
        session.add(row)
        await session.flush()
        session.add(ConfigVersionRow(id=version_id, config_id=config_id, version=1,
                                     config=payload.config))
    store.changed()
    return row


async def list_all(store: KeyStore) -> list[ConfigRow]:
    async with store.db.sessions() as session:
        rows = await session.execute(
            select(ConfigRow).where(ConfigRow.status != "deleted").order_by(ConfigRow.created_at))
        return list(rows.scalars())


async def get(store: KeyStore, ref: str) -> ConfigRow:
    async with store.db.sessions() as session:
        return await find(session, ConfigRow, ref, "config")


async def update(store: KeyStore, ref: str, data: Any) -> ConfigRow:
    """Renames or re-statuses in place; a new `config` becomes a new version."""
    payload = parse_payload(UpdateConfig, data)
    if payload.config is not None:
        validate_saved(payload.config)
    async with store.db.sessions() as session, session.begin():
        row = await find(session, ConfigRow, ref, "config")
        if row.status == "deleted":
            raise InvalidRequest(f"config '{ref}' was deleted", code="config_deleted")
        if payload.name is not None:
            row.name = payload.name
        if payload.status is not None:
            row.status = payload.status
        if payload.config is not None and payload.config != row.config:
            last = await session.scalar(select(func.max(ConfigVersionRow.version))
                                        .where(ConfigVersionRow.config_id == row.id))
            version = ConfigVersionRow(id=new_id(), config_id=row.id, version=(last or 0) + 1,
                                       config=payload.config)
            session.add(version)
            row.config, row.version_id = payload.config, version.id
    store.changed()
    return row


async def delete(store: KeyStore, ref: str) -> ConfigRow:
    async with store.db.sessions() as session, session.begin():
        row = await find(session, ConfigRow, ref, "config")
        row.status = "deleted"
    store.changed()
    return row


async def versions(store: KeyStore, ref: str) -> list[ConfigVersionRow]:
    async with store.db.sessions() as session:
        row = await find(session, ConfigRow, ref, "config")
        rows = await session.execute(select(ConfigVersionRow)
                                     .where(ConfigVersionRow.config_id == row.id)
                                     .order_by(ConfigVersionRow.version))
        return list(rows.scalars())

"""Prompt templates (`pp-...`): every change is a new version; one version is published.

A call that pins no version gets the published one; `@N` pins version N and `@latest` the
newest, published or not. Creating a prompt publishes version 1 unless `publish` is false;
an update makes a new version and publishes it only when asked.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.contracts.identity import PromptPin, StoredPrompt
from gateway.db.models import PromptRow, PromptVersionRow
from gateway.errors import InvalidRequest, NotFound
from gateway.store.key_store import (
    KeyStore,
    find,
    iso,
    new_id,
    parse_payload,
    random_suffix,
    slugify,
)
from gateway.store.templates import Template, TemplateError
from providers import REGISTRY

_ROUTE = ("provider", "virtual_key", "config")
# What the portkey-ai SDK sends beside the parameters; kept with them, sent upstream as given.
_SDK_PARAMETERS = ("functions", "tools", "tool_choice")


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, tool_call_id ...
    role: str = Field(min_length=1, max_length=64)
    content: str | list[dict[str, Any]] | None = None


class _Template(BaseModel):
    """The fields that make a version; every one optional so an update can change a few."""

    model_config = ConfigDict(extra="ignore")  # the SDK's collection_id, template_metadata
    messages: list[Message] | None = Field(None, min_length=1)
    string: str | None = None  # the SDK's form: a JSON list of messages, or one user message
    model: str | None = Field(None, max_length=256)
    parameters: dict[str, Any] | None = None
    provider: str | None = None
    virtual_key: str | None = Field(None, max_length=100)
    config: str | None = Field(None, max_length=100)
    description: str | None = None
    version_description: str | None = None
    functions: list[Any] | None = None
    tools: list[Any] | None = None
    tool_choice: dict[str, Any] | str | None = None

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str | None) -> str | None:
        if value is not None and value not in REGISTRY:
            raise ValueError(f"unknown provider '{value}'")
        return value

    @model_validator(mode="after")
    def _one_route(self) -> _Template:
        if sum(getattr(self, name) is not None for name in _ROUTE) > 1:
            raise ValueError("give at most one of provider, virtual_key and config")
        if self.messages is not None and self.string is not None:
            raise ValueError("give messages or string, not both")
        return self


class CreatePrompt(_Template):
    name: str = Field(min_length=1, max_length=200)
    publish: bool = True


class UpdatePrompt(_Template):
    name: str | None = Field(None, min_length=1, max_length=200)
    publish: bool = False


class Publish(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: int | None = Field(None, ge=1)


def _messages(payload: _Template) -> list[dict[str, Any]] | None:
    if payload.messages is not None:
        return [m.model_dump(exclude_unset=False) for m in payload.messages]
    if payload.string is None:
        return None
    try:
        parsed = orjson.loads(payload.string)
    except orjson.JSONDecodeError:
        return [{"role": "user", "content": payload.string}]
    if not isinstance(parsed, list):
        return [{"role": "user", "content": payload.string}]
    # A JSON list of messages: validated like `messages`.
    checked = parse_payload(_Template, {"messages": parsed}).messages or []
    return [m.model_dump() for m in checked]


def _compiled(messages: list[dict[str, Any]]) -> Template:
    try:
        return Template.compile(messages)
    except TemplateError as exc:
        raise InvalidRequest(str(exc), param=str(exc).split(":", 1)[0],
                             code="invalid_template") from None


def _parameters(payload: _Template, base: dict[str, Any]) -> dict[str, Any]:
    parameters = dict(base if payload.parameters is None else payload.parameters)
    for name in _SDK_PARAMETERS:
        value = getattr(payload, name)
        if value is not None:
            parameters[name] = value
    for name in ("messages", "stream", "variables"):
        if name in parameters:
            raise InvalidRequest(f"parameters.{name}: not a stored parameter",
                                 param=f"parameters.{name}", code="invalid_field")
    return parameters


def _version(prompt_id: str, number: int, payload: _Template,
             base: PromptVersionRow | None) -> PromptVersionRow:
    """A new version: the payload's fields over the base version's."""
    messages = _messages(payload)
    if messages is None:
        if base is None:
            raise InvalidRequest("messages: a prompt needs messages (or string)",
                                 param="messages", code="invalid_field")
        messages = base.messages
    _compiled(messages)
    route_given = any(getattr(payload, name) is not None for name in _ROUTE)
    route = {name: getattr(payload if route_given or base is None else base, name)
             for name in _ROUTE}
    return PromptVersionRow(
        id=new_id(), prompt_id=prompt_id, version=number, messages=messages,
        model=payload.model if payload.model is not None else base.model if base else None,
        parameters=_parameters(payload, base.parameters if base else {}),
        description=payload.description or payload.version_description, **route)


def view(row: PromptRow, version: PromptVersionRow | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "slug": row.slug, "object": "prompt", "name": row.name,
        "status": row.status, "latest_version": row.latest_version,
        "published_version": row.published_version,
        "created_at": iso(row.created_at), "last_updated_at": iso(row.updated_at),
    }
    if version is not None:
        out["version_id"] = version.id
        out.update({k: v for k, v in version_view(version, row).items()
                    if k in ("version", "messages", "model", "parameters", *_ROUTE)})
    return out


def version_view(row: PromptVersionRow, prompt: PromptRow) -> dict[str, Any]:
    return {"id": row.id, "object": "prompt-version", "prompt_id": row.prompt_id,
            "version": row.version, "published": row.version == prompt.published_version,
            "messages": row.messages, "model": row.model, "parameters": row.parameters,
            "provider": row.provider, "virtual_key": row.virtual_key, "config": row.config,
            "description": row.description, "created_at": iso(row.created_at)}


async def _find(session: AsyncSession, ref: str) -> PromptRow:
    row = await find(session, PromptRow, ref, "prompt")
    if row.status == "deleted":
        raise NotFound(f"prompt '{ref}' not found", code="prompt_not_found")
    return row


async def _version_row(session: AsyncSession, prompt: PromptRow,
                       number: int) -> PromptVersionRow | None:
    return (await session.execute(select(PromptVersionRow).where(
        PromptVersionRow.prompt_id == prompt.id,
        PromptVersionRow.version == number))).scalar_one_or_none()


async def create(store: KeyStore, data: Any) -> tuple[PromptRow, PromptVersionRow]:
    payload = parse_payload(CreatePrompt, data)
    prompt_id = new_id()
    version = _version(prompt_id, 1, payload, None)
    row = PromptRow(id=prompt_id, name=payload.name, latest_version=1,
                    published_version=1 if payload.publish else None, status="active",
                    slug=f"pp-{slugify(payload.name, 32)}-{random_suffix()}")
    async with store.db.sessions() as session, session.begin():
        session.add(row)
        await session.flush()
        session.add(version)
    store.changed()
    return row, version


async def list_all(store: KeyStore) -> list[PromptRow]:
    async with store.db.sessions() as session:
        rows = await session.execute(
            select(PromptRow).where(PromptRow.status != "deleted").order_by(PromptRow.created_at))
        return list(rows.scalars())


async def get(store: KeyStore, ref: str) -> tuple[PromptRow, PromptVersionRow | None]:
    """The prompt and the version a plain call would use (published, else the latest)."""
    async with store.db.sessions() as session:
        row = await _find(session, ref)
        return row, await _version_row(session, row, row.published_version or row.latest_version)


async def update(store: KeyStore, ref: str, data: Any) -> tuple[PromptRow, PromptVersionRow]:
    """Renames in place; any template field makes a new version from the latest one."""
    payload = parse_payload(UpdatePrompt, data)
    async with store.db.sessions() as session, session.begin():
        row = await _find(session, ref)
        latest = await _version_row(session, row, row.latest_version)
        if payload.name is not None:
            row.name = payload.name
        fields = payload.model_fields_set - {"name", "publish"}
        version = latest
        if fields or latest is None:
            version = _version(row.id, row.latest_version + 1, payload, latest)
            session.add(version)
            row.latest_version = version.version
        if payload.publish:
            row.published_version = row.latest_version
        assert version is not None
    store.changed()
    return row, version


async def publish(store: KeyStore, ref: str, data: Any) -> tuple[PromptRow, PromptVersionRow]:
    payload = parse_payload(Publish, data)
    async with store.db.sessions() as session, session.begin():
        row = await _find(session, ref)
        number = payload.version or row.latest_version
        version = await _version_row(session, row, number)
        if version is None:
            raise NotFound(f"prompt '{ref}' has no version {number}",
                           code="prompt_version_not_found")
        row.published_version = number
    store.changed()
    return row, version


async def delete(store: KeyStore, ref: str) -> PromptRow:
    async with store.db.sessions() as session, session.begin():
        row = await _find(session, ref)
        row.status = "deleted"
    store.changed()
    return row


async def versions(store: KeyStore, ref: str) -> tuple[PromptRow, list[PromptVersionRow]]:
    async with store.db.sessions() as session:
        row = await _find(session, ref)
        rows = await session.execute(select(PromptVersionRow)
                                     .where(PromptVersionRow.prompt_id == row.id)
                                     .order_by(PromptVersionRow.version))
        return row, list(rows.scalars())


async def version(store: KeyStore, ref: str, which: str) -> tuple[PromptRow, PromptVersionRow]:
    """One version by its number or its id (the SDK's `version_id`)."""
    async with store.db.sessions() as session:
        row = await _find(session, ref)
        clause = PromptVersionRow.id == which
        if which.isdigit():
            clause = or_(clause, PromptVersionRow.version == int(which))
        found = (await session.execute(select(PromptVersionRow).where(
            PromptVersionRow.prompt_id == row.id, clause))).scalar_one_or_none()
        if found is None:
            raise NotFound(f"prompt '{ref}' has no version '{which}'",
                           code="prompt_version_not_found")
        return row, found


async def load(session: AsyncSession, ref: str, pin: PromptPin) -> StoredPrompt:
    """What the request path serves: the pinned version, or the published one. 404 else."""
    row = (await session.execute(select(PromptRow).where(
        or_(PromptRow.slug == ref, PromptRow.id == ref),
        PromptRow.status == "active"))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"prompt '{ref}' not found", code="prompt_not_found")
    number = row.latest_version if pin == "latest" else pin or row.published_version
    if number is None:
        raise NotFound(f"prompt '{ref}' has no published version; publish one, or pin one "
                       f"as '{ref}@<version>' or '{ref}@latest'", code="prompt_not_published")
    found = await _version_row(session, row, number)
    if found is None:
        raise NotFound(f"prompt '{ref}' has no version {number}",
                       code="prompt_version_not_found")
    return StoredPrompt(id=row.id, slug=row.slug, version=found.version,
                        template=Template.compile(found.messages), model=found.model,
                        parameters=dict(found.parameters), provider=found.provider,
                        virtual_key=found.virtual_key, config=found.config)

"""Gateway API keys: create (the key shown once), list, read, update, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import select

from gateway.db.models import ApiKeyRow
from gateway.errors import InvalidRequest
from gateway.store import key_guardrails, tokens
from gateway.store.key_store import KeyStore, find, iso, new_id, parse_payload
from gateway.store.limits import (
    RateLimit,
    UsageLimits,
    limit_columns,
    rate_limits_view,
    usage_limits_view,
)

Scope = Literal["inference", "admin"]
# What an allow-list holds: slugs or ids, as the admin gave them (None: unrestricted).
AllowList = list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                  max_length=200)]] | None


class _Fields(BaseModel):
    # The SDK also sends type, sub-type, workspace_id, user_id: meaningless here.
    model_config = ConfigDict(extra="ignore")
    description: str | None = None
    expires_at: datetime | None = None
    default_config: str | None = None
    defaults: dict[str, Any] | None = None  # the SDK's {"config_id": ...}
    rate_limits: list[RateLimit] | None = None
    usage_limits: UsageLimits | None = None
    # Which virtual keys, saved configs and models the key may use (README: Which keys may
    # use what). None is unrestricted; [] allows none.
    allowed_virtual_keys: AllowList = Field(None, max_length=1000)
    allowed_configs: AllowList = Field(None, max_length=1000)
    allowed_models: AllowList = Field(None, max_length=1000)
    # Guardrails every request made with the key runs, whatever its config (shorthand or
    # full hook objects, as in a config's input_guardrails / before_request_hooks).
    default_input_guardrails: list[Any] | None = key_guardrails.payload_field(
        "default_input_guardrails")
    default_output_guardrails: list[Any] | None = key_guardrails.payload_field(
        "default_output_guardrails")

    @field_validator("allowed_virtual_keys", "allowed_configs", "allowed_models")
    @classmethod
    def _unique(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else list(dict.fromkeys(values))

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a time zone, e.g. 2026-01-31T00:00:00Z")
        return value


class CreateApiKey(_Fields):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(default_factory=lambda: list[Scope](["inference"]),
                                min_length=1)


class UpdateApiKey(_Fields):
    name: str | None = Field(None, min_length=1, max_length=200)
    scopes: list[Scope] | None = Field(None, min_length=1)


def _columns(payload: _Fields, only_set: bool) -> dict[str, Any]:
    names = payload.model_fields_set if only_set else set(type(payload).model_fields)
    values = payload.model_dump(include=names - {"defaults", "rate_limits", "usage_limits"})
    for required in ("name", "scopes"):
        if required in values and values[required] is None:
            raise InvalidRequest(f"{required} cannot be null", param=required)
    if payload.defaults and "config_id" in payload.defaults:
        values["default_config"] = payload.defaults["config_id"]
    if "scopes" in values:
        values["scopes"] = sorted(set(values["scopes"]))
    key_guardrails.check(values)
    try:
        values.update(limit_columns(payload.rate_limits, payload.usage_limits))
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="rate_limits") from None
    return values


def view(row: ApiKeyRow) -> dict[str, Any]:
    return {
        "id": row.id, "object": "api-key", "name": row.name, "description": row.description,
        "key": tokens.masked(row.key_prefix, row.key_last4), "scopes": row.scopes,
        "status": row.status, "expires_at": iso(row.expires_at),
        "defaults": {"config_id": row.default_config} if row.default_config else None,
        "rate_limits": rate_limits_view(row), "usage_limits": usage_limits_view(row),
        "allowed_virtual_keys": row.allowed_virtual_keys, "allowed_configs": row.allowed_configs,
        "allowed_models": row.allowed_models, **key_guardrails.view(row),
        "created_at": iso(row.created_at), "last_updated_at": iso(row.updated_at),
    }


async def create(store: KeyStore, data: Any) -> tuple[ApiKeyRow, str]:
    """The new row and the key itself, which is never stored and never shown again."""
    payload = parse_payload(CreateApiKey, data)
    key = tokens.new_api_key()
    row = ApiKeyRow(id=new_id(), key_hash=tokens.hash_key(key),
                    key_prefix=tokens.display_prefix(key), key_last4=key[-4:], status="active",
                    **_columns(payload, only_set=False))
    async with store.db.sessions() as session, session.begin():
        session.add(row)
    store.changed()
    return row, key


async def list_all(store: KeyStore) -> list[ApiKeyRow]:
    async with store.db.sessions() as session:
        rows = await session.execute(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
        return list(rows.scalars())


async def get(store: KeyStore, ref: str) -> ApiKeyRow:
    async with store.db.sessions() as session:
        return await find(session, ApiKeyRow, ref, "api key", by_slug=False)


async def update(store: KeyStore, ref: str, data: Any) -> ApiKeyRow:
    payload = parse_payload(UpdateApiKey, data)
    async with store.db.sessions() as session, session.begin():
        row = await find(session, ApiKeyRow, ref, "api key", by_slug=False)
        for name, value in _columns(payload, only_set=True).items():
            setattr(row, name, value)
    store.changed()
    return row


async def revoke(store: KeyStore, ref: str) -> ApiKeyRow:
    async with store.db.sessions() as session, session.begin():
        row = await find(session, ApiKeyRow, ref, "api key", by_slug=False)
        row.status = "revoked"
    store.changed()
    return row

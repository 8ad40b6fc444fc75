"""Virtual keys: a provider secret, sealed with the master key, behind a shareable slug."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.db.models import VirtualKeyRow
from gateway.errors import InvalidRequest
from gateway.security.destinations import normalise_origins
from gateway.store import key_guardrails
from gateway.store.crypto import Sealed
from gateway.store.key_store import (
    KeyStore,
    find,
    iso,
    new_id,
    parse_payload,
    random_suffix,
    slugify,
)
from gateway.store.limits import (
    RateLimit,
    UsageLimits,
    limit_columns,
    rate_limits_view,
    usage_limits_view,
)
from providers import REGISTRY
from providers.options import InvalidOption, check_url_options

# The SDK's camelCase provider options -> the x-portkey-<option> names the adapters read.
SDK_OPTIONS = {
    "apiVersion": "azure-api-version",
    "resourceName": "azure-resource-name",
    "deploymentName": "azure-deployment-id",
}


class _Fields(BaseModel):
    model_config = ConfigDict(extra="ignore")  # workspace_id and other hosted-only fields
    key: str | None = Field(None, min_length=1)
    note: str | None = None
    apiVersion: str | None = None  # noqa: N815 - the SDK's field names
    resourceName: str | None = None  # noqa: N815
    deploymentName: str | None = None  # noqa: N815
    options: dict[str, str] | None = None
    custom_host: str | None = None
    allowed_models: list[str] | None = None
    # Origins a request's x-portkey-custom-host may name with this key's secret.
    allowed_custom_hosts: list[str] | None = Field(
        None, validation_alias=AliasChoices("allowed_custom_hosts", "allowedCustomHosts"))
    expires_at: datetime | None = None
    rate_limits: list[RateLimit] | None = None
    usage_limits: UsageLimits | None = None
    # Guardrails every request through the key runs, whatever its config (shorthand or full
    # hook objects, as in a config's input_guardrails / before_request_hooks).
    default_input_guardrails: list[Any] | None = key_guardrails.payload_field(
        "default_input_guardrails", camel_case=True)
    default_output_guardrails: list[Any] | None = key_guardrails.payload_field(
        "default_output_guardrails", camel_case=True)

    @field_validator("custom_host")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme not in ("http", "https")
                                  or not urlsplit(value).hostname):
            raise ValueError("custom_host must be an http(s) URL")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a time zone, e.g. 2026-01-31T00:00:00Z")
        return value


class CreateVirtualKey(_Fields):
    name: str = Field(min_length=1, max_length=200)
    provider: str
    slug: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")

    @field_validator("provider")
    @classmethod
    def _known(cls, value: str) -> str:
        slug = value.strip().lower()
        if slug not in REGISTRY:
            raise ValueError(f"unknown provider '{value}'; known: " + ", ".join(sorted(REGISTRY)))
        return slug


class UpdateVirtualKey(_Fields):
    name: str | None = Field(None, min_length=1, max_length=200)


_PLAIN = ("name", "note", "custom_host", "allowed_models", "expires_at",
          *key_guardrails.COLUMNS)


def _columns(store: KeyStore, payload: _Fields, row: VirtualKeyRow) -> dict[str, Any]:
    given = payload.model_fields_set
    values: dict[str, Any] = {n: getattr(payload, n) for n in _PLAIN if n in given}
    if values.get("name", "") is None:
        raise InvalidRequest("name cannot be null", param="name")
    key_guardrails.check(values)
    options = dict(row.options or {})
    if payload.options is not None:
        options = dict(payload.options)
    options.update({SDK_OPTIONS[n]: getattr(payload, n) for n in SDK_OPTIONS
                    if getattr(payload, n) is not None})
    try:
        check_url_options(options)
    except InvalidOption as exc:
        raise InvalidRequest(f"options: {exc}", param=f"options.{exc.name}",
                             code="invalid_option") from None
    values["options"] = options
    if "allowed_custom_hosts" in given:
        hosts = payload.allowed_custom_hosts
        values["allowed_custom_hosts"] = None if hosts is None else normalise_origins(
            hosts, "allowed_custom_hosts")
    if payload.key is not None:
        sealed = store.box.seal(payload.key)
        values.update(secret_ciphertext=sealed.ciphertext, secret_key_id=sealed.key_id,
                      secret_last4=payload.key[-4:])
    try:
        values.update(limit_columns(payload.rate_limits, payload.usage_limits))
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="rate_limits") from None
    return values


def sealed_secret(row: VirtualKeyRow) -> Sealed | None:
    if row.secret_ciphertext is None or row.secret_key_id is None:
        return None
    return Sealed(row.secret_key_id, row.secret_ciphertext)


def view(row: VirtualKeyRow) -> dict[str, Any]:
    return {
        "id": row.id, "slug": row.slug, "object": "virtual-key", "name": row.name,
        "note": row.note, "provider": row.provider, "status": row.status,
        "key_last4": row.secret_last4,
        "masked_key": f"****{row.secret_last4}" if row.secret_last4 else None,
        "options": row.options, "custom_host": row.custom_host,
        "allowed_models": row.allowed_models,
        "allowed_custom_hosts": row.allowed_custom_hosts or [], "expires_at": iso(row.expires_at),
        **key_guardrails.view(row),
        "rate_limits": rate_limits_view(row), "usage_limits": usage_limits_view(row),
        "created_at": iso(row.created_at), "last_updated_at": iso(row.updated_at),
    }


async def create(store: KeyStore, data: Any) -> VirtualKeyRow:
    payload = parse_payload(CreateVirtualKey, data)
    store.box.ensure_can_seal()  # without a master key: 503 naming GATEWAY_MASTER_KEY
    row = VirtualKeyRow(id=new_id(), provider=payload.provider, status="active", options={})
    for name, value in _columns(store, payload, row).items():
        setattr(row, name, value)
    async with store.db.sessions() as session:
        row.slug = payload.slug or await _free_slug(session, slugify(payload.name))
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            raise InvalidRequest(f"a virtual key with slug '{row.slug}' already exists",
                                 param="slug", code="slug_taken") from None
    store.changed()
    return row


async def _free_slug(session: Any, base: str) -> str:
    taken = await session.execute(select(VirtualKeyRow.id).where(VirtualKeyRow.slug == base))
    return base if taken.first() is None else f"{base}-{random_suffix()}"


async def list_all(store: KeyStore) -> list[VirtualKeyRow]:
    async with store.db.sessions() as session:
        rows = await session.execute(select(VirtualKeyRow).order_by(VirtualKeyRow.created_at))
        return list(rows.scalars())


async def get(store: KeyStore, ref: str) -> VirtualKeyRow:
    async with store.db.sessions() as session:
        return await find(session, VirtualKeyRow, ref, "virtual key")


async def update(store: KeyStore, ref: str, data: Any) -> VirtualKeyRow:
    payload = parse_payload(UpdateVirtualKey, data)
    async with store.db.sessions() as session, session.begin():
        row = await find(session, VirtualKeyRow, ref, "virtual key")
        for name, value in _columns(store, payload, row).items():
            setattr(row, name, value)
    store.changed()
    return row


async def revoke(store: KeyStore, ref: str) -> VirtualKeyRow:
    async with store.db.sessions() as session, session.begin():
        row = await find(session, VirtualKeyRow, ref, "virtual key")
        row.status = "revoked"
    store.changed()
    return row


async def rotate_master(store: KeyStore) -> tuple[int, int]:
    """Re-seal every secret under the current master key: (re-sealed, already current)."""
    store.box.ensure_can_seal()
    moved = current = 0
    async with store.db.sessions() as session, session.begin():
        rows = (await session.execute(select(VirtualKeyRow).with_for_update())).scalars()
        for row in rows:
            sealed = sealed_secret(row)
            if sealed is None:
                continue
            if sealed.key_id == store.box.current_id:
                current += 1
                continue
            fresh = store.box.seal(store.box.open(sealed, f"virtual key '{row.slug}'"))
            row.secret_ciphertext, row.secret_key_id = fresh.ciphertext, fresh.key_id
            moved += 1
    store.changed()
    return moved, current

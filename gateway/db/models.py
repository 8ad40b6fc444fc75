"""The key store's tables. The schema itself changes only through `migrations/`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.db.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    pass


class LimitColumns:
    """Limit fields shared by API keys and virtual keys (see gateway.contracts.identity.Limits)."""

    rpm: Mapped[int | None] = mapped_column(Integer)
    rph: Mapped[int | None] = mapped_column(Integer)
    rpd: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(BigInteger)
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    budget_usd: Mapped[float | None] = mapped_column(Float)
    budget_period: Mapped[str | None] = mapped_column(String(16))


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiKeyRow(LimitColumns, Timestamps, Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the key
    key_prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell keys apart
    key_last4: Mapped[str] = mapped_column(String(4))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    default_config: Mapped[str | None] = mapped_column(String(100))
    # What this key may use (ids or slugs); None means unrestricted.
    allowed_virtual_keys: Mapped[list[str] | None] = mapped_column(JSON)
    allowed_configs: Mapped[list[str] | None] = mapped_column(JSON)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON)
    # Guardrails every request made with the key runs (gateway/store/key_guardrails.py).
    default_input_guardrails: Mapped[list[Any] | None] = mapped_column(JSON)
    default_output_guardrails: Mapped[list[Any] | None] = mapped_column(JSON)


class VirtualKeyRow(LimitColumns, Timestamps, Base):
    __tablename__ = "virtual_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(64))
    # AES-256-GCM: base64(nonce || ciphertext || tag), and the id of the master key used.
    secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    secret_key_id: Mapped[str | None] = mapped_column(String(16))
    secret_last4: Mapped[str | None] = mapped_column(String(4))
    options: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    custom_host: Mapped[str | None] = mapped_column(Text)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON)
    # Client custom hosts (`scheme://host:port`) this key's secret may be sent to.
    allowed_custom_hosts: Mapped[list[str] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Guardrails every request through the key runs (gateway/store/key_guardrails.py).
    default_input_guardrails: Mapped[list[Any] | None] = mapped_column(JSON)
    default_output_guardrails: Mapped[list[Any] | None] = mapped_column(JSON)


class ConfigRow(Timestamps, Base):
    __tablename__ = "configs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)  # "pc-..."
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    version_id: Mapped[str] = mapped_column(String(36))  # the current version
    status: Mapped[str] = mapped_column(String(16), default="active")


class ConfigVersionRow(Base):
    __tablename__ = "config_versions"
    __table_args__ = (UniqueConstraint("config_id", "version", name="uq_config_versions_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    config_id: Mapped[str] = mapped_column(ForeignKey("configs.id", ondelete="CASCADE"),
                                           index=True)
    version: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PromptRow(Timestamps, Base):
    __tablename__ = "prompts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)  # "pp-..."
    name: Mapped[str] = mapped_column(String(200))
    latest_version: Mapped[int] = mapped_column(Integer)
    published_version: Mapped[int | None] = mapped_column(Integer)  # served when none is pinned
    status: Mapped[str] = mapped_column(String(16), default="active")


class PromptVersionRow(Base):
    """One saved template: messages with mustache tags, model, parameters and its route."""

    __tablename__ = "prompt_versions"
    __table_args__ = (UniqueConstraint("prompt_id", "version", name="uq_prompt_versions_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"),
                                           index=True)
    version: Mapped[int] = mapped_column(Integer)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(256))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What to route with: a provider (the caller's Authorization), a virtual key, or a config.
    provider: Mapped[str | None] = mapped_column(String(64))
    virtual_key: Mapped[str | None] = mapped_column(String(100))
    config: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResponseRow(Base):
    """One stored OpenAI Responses answer (gateway/store/responses/): what GET returns, and
    its input and output items (the turn a `previous_response_id` chain replays). Every
    response of a conversation shares `root_id`, so a chain loads in one indexed query."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "resp_..."
    # Whose it is: "key:<api key id>", or "anon:<hash of the provider credential>".
    owner: Mapped[str] = mapped_column(String(80))
    previous_response_id: Mapped[str | None] = mapped_column(String(64))
    root_id: Mapped[str] = mapped_column(String(64), index=True)
    depth: Mapped[int] = mapped_column(Integer)  # 0 for a conversation's first response
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    model: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)  # the Response object, verbatim
    input_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    output_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # the Response's output

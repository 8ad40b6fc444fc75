"""Key store: gateway API keys, virtual keys (encrypted provider secrets), saved configs.

Revision ID: 0001_keys
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001_keys"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _limits() -> list[sa.Column[Any]]:
    return [
        sa.Column("rpm", sa.Integer()),
        sa.Column("rph", sa.Integer()),
        sa.Column("rpd", sa.Integer()),
        sa.Column("tpm", sa.BigInteger()),
        sa.Column("max_concurrent", sa.Integer()),
        sa.Column("budget_usd", sa.Float()),
        sa.Column("budget_period", sa.String(16)),
    ]


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("key_last4", sa.String(4), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        _ts("expires_at", nullable=True),
        sa.Column("default_config", sa.String(100)),
        *_limits(),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "virtual_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("secret_ciphertext", sa.Text()),
        sa.Column("secret_key_id", sa.String(16)),
        sa.Column("secret_last4", sa.String(4)),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("custom_host", sa.Text()),
        sa.Column("allowed_models", sa.JSON()),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        _ts("expires_at", nullable=True),
        *_limits(),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("slug", name="uq_virtual_keys_slug"),
    )
    op.create_table(
        "configs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("version_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("slug", name="uq_configs_slug"),
    )
    op.create_table(
        "config_versions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("config_id", sa.String(36),
                  sa.ForeignKey("configs.id", ondelete="CASCADE", name="fk_config_versions_config"),
                  nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("config_id", "version", name="uq_config_versions_version"),
    )
    op.create_index("ix_config_versions_config_id", "config_versions", ["config_id"])


def downgrade() -> None:
    op.drop_index("ix_config_versions_config_id", table_name="config_versions")
    op.drop_table("config_versions")
    op.drop_table("configs")
    op.drop_table("virtual_keys")
    op.drop_table("api_keys")

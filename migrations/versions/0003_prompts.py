"""Prompt templates: a prompt under a slug, and every version of its template kept.

Revision ID: 0003_prompts
Revises: 0002_request_logs
Create Date: 2026-11-25
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_prompts"
down_revision = "0002_request_logs"
branch_labels = None
depends_on = None


def _ts(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer()),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("slug", name="uq_prompts_slug"),
    )
    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("prompt_id", sa.String(36),
                  sa.ForeignKey("prompts.id", ondelete="CASCADE", name="fk_prompt_versions_prompt"),
                  nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(256)),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("provider", sa.String(64)),
        sa.Column("virtual_key", sa.String(100)),
        sa.Column("config", sa.String(100)),
        sa.Column("description", sa.Text()),
        _ts("created_at"),
        sa.UniqueConstraint("prompt_id", "version", name="uq_prompt_versions_version"),
    )
    op.create_index("ix_prompt_versions_prompt_id", "prompt_versions", ["prompt_id"])


def downgrade() -> None:
    op.drop_index("ix_prompt_versions_prompt_id", table_name="prompt_versions")
    op.drop_table("prompt_versions")
    op.drop_table("prompts")

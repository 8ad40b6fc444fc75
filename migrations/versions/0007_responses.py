"""Stored OpenAI Responses: each response's Response object and its input and output items,
scoped to its owner; `root_id` groups a conversation so a `previous_response_id` chain loads
in one indexed query, `created_at` is indexed for the retention purge.

Revision ID: 0007_responses
Revises: 0006_hook_results
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_responses"
down_revision = "0006_hook_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("previous_response_id", sa.String(64)),
        sa.Column("root_id", sa.String(64), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("input_items", sa.JSON(), nullable=False),
        sa.Column("output_items", sa.JSON(), nullable=False),
    )
    op.create_index("ix_responses_root_id", "responses", ["root_id"])
    op.create_index("ix_responses_created_at", "responses", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_created_at", table_name="responses")
    op.drop_index("ix_responses_root_id", table_name="responses")
    op.drop_table("responses")

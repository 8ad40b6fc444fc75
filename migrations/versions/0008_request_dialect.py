"""The client dialect in the usage log: `chat` (Chat Completions, completions, embeddings,
passthrough), `messages` (Anthropic Messages) or `responses` (OpenAI Responses). Rows written
before this migration read null (they were all `chat`).

Revision ID: 0008_request_dialect
Revises: 0007_responses
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_request_dialect"
down_revision = "0007_responses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("request_logs", sa.Column("dialect", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("dialect")

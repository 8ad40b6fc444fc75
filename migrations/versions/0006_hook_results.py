"""Guardrails in the usage log: each request's hook verdicts, and whether any hook failed.

`hook_results` holds Portkey's `hook_results` object in short (verdicts, check ids, errors,
timings; gateway/usage/verdicts.py), null when no hook ran; `hooks_failed` is true when a hook
that ran failed, false when all passed, null when none ran. A partial index keeps the list of
failures (`/admin/logs?hooks_failed=true`, newest first) cheap without indexing the rest.

On Postgres the columns and the index are added to the partitioned table, and so to every
partition, the default one included.

Revision ID: 0006_hook_results
Revises: 0005_key_guardrails
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_hook_results"
down_revision = "0005_key_guardrails"
branch_labels = None
depends_on = None

_INDEX = "ix_request_logs_hooks_failed"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    json_type = postgresql.JSONB() if postgres else sa.JSON()
    op.add_column("request_logs", sa.Column("hook_results", json_type))
    op.add_column("request_logs", sa.Column("hooks_failed", sa.Boolean()))
    op.create_index(_INDEX, "request_logs", ["created_at"],
                    postgresql_where=sa.text("hooks_failed"),
                    sqlite_where=sa.text("hooks_failed = 1"))


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="request_logs")
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("hooks_failed")
        batch.drop_column("hook_results")

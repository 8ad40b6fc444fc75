"""Usage records: one row per request. Daily partitions on Postgres, a plain table on SQLite.

Revision ID: 0002_request_logs
Revises: 0001_keys
Create Date: 2026-11-25
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_request_logs"
down_revision = "0001_keys"
branch_labels = None
depends_on = None


def _columns(json_type: Any) -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_id", sa.String(128)),
        sa.Column("api_key_id", sa.String(36)),
        sa.Column("virtual_key_id", sa.String(36)),
        sa.Column("config_id", sa.String(100)),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(64)),
        sa.Column("model", sa.String(256)),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error_type", sa.String(64)),
        sa.Column("error_message", sa.Text()),
        sa.Column("prompt_tokens", sa.Integer()),
        sa.Column("completion_tokens", sa.Integer()),
        sa.Column("cached_tokens", sa.Integer()),
        sa.Column("total_tokens", sa.Integer()),
        sa.Column("tokens_estimated", sa.Boolean(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(20, 10)),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("ttfb_ms", sa.Float()),
        sa.Column("upstream_latency_ms", sa.Float()),
        sa.Column("gateway_overhead_ms", sa.Float()),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("last_used_option", sa.String(256)),
        sa.Column("cache_status", sa.String(16)),
        sa.Column("metadata", json_type),
        sa.Column("attempts", json_type),
        sa.Column("prompt_id", sa.String(100)),
        sa.Column("prompt_version", sa.Integer()),
        sa.Column("request_body", sa.Text()),
        sa.Column("response_body", sa.Text()),
    ]


_INDEXES = {
    "ix_request_logs_created_at": ["created_at"],
    "ix_request_logs_api_key": ["api_key_id", "created_at"],
    "ix_request_logs_virtual_key": ["virtual_key_id", "created_at"],
    "ix_request_logs_provider_model": ["provider", "model", "created_at"],
    "ix_request_logs_trace_id": ["trace_id"],
}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    json_type = postgresql.JSONB() if postgres else sa.JSON()
    if postgres:
        # The primary key must hold the partition key; the gateway creates daily partitions
        # ahead of time, and the default partition catches anything outside them.
        op.create_table("request_logs", *_columns(json_type),
                        sa.PrimaryKeyConstraint("id", "created_at"),
                        postgresql_partition_by="RANGE (created_at)")
        op.execute("CREATE TABLE request_logs_default PARTITION OF request_logs DEFAULT")
    else:
        op.create_table("request_logs", *_columns(json_type), sa.PrimaryKeyConstraint("id"))
    for name, columns in _INDEXES.items():
        op.create_index(name, "request_logs", columns)


def downgrade() -> None:
    op.drop_table("request_logs")  # drops its partitions and indexes with it

"""The `request_logs` table as SQLAlchemy sees it (the schema itself is migrations 0002, 0006)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gateway.db.models import Base
from gateway.db.types import UTCDateTime

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

request_logs = sa.Table(
    "request_logs", Base.metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", UTCDateTime, primary_key=True),
    sa.Column("trace_id", sa.String(128)),
    sa.Column("api_key_id", sa.String(36)),
    sa.Column("virtual_key_id", sa.String(36)),
    sa.Column("config_id", sa.String(100)),
    sa.Column("endpoint", sa.String(200), nullable=False),
    sa.Column("provider", sa.String(64)),
    sa.Column("model", sa.String(256)),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error_type", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("prompt_tokens", sa.Integer),
    sa.Column("completion_tokens", sa.Integer),
    sa.Column("cached_tokens", sa.Integer),
    sa.Column("total_tokens", sa.Integer),
    sa.Column("tokens_estimated", sa.Boolean, nullable=False),
    sa.Column("cost_usd", sa.Numeric(20, 10)),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("ttfb_ms", sa.Float),
    sa.Column("upstream_latency_ms", sa.Float),
    sa.Column("gateway_overhead_ms", sa.Float),
    sa.Column("retry_count", sa.Integer, nullable=False),
    sa.Column("last_used_option", sa.String(256)),
    sa.Column("cache_status", sa.String(16)),
    sa.Column("metadata", _JSON),
    sa.Column("attempts", _JSON),
    sa.Column("prompt_id", sa.String(100)),
    sa.Column("prompt_version", sa.Integer),
    sa.Column("request_body", sa.Text),
    sa.Column("response_body", sa.Text),
    # Migration 0006: the guardrails' verdicts (gateway/usage/verdicts.py); null: none ran.
    sa.Column("hook_results", _JSON),
    sa.Column("hooks_failed", sa.Boolean),
    # Migration 0008: the client's dialect (chat, messages, responses); null before it.
    sa.Column("dialect", sa.String(16)),
    sa.Index("ix_request_logs_created_at", "created_at"),
    sa.Index("ix_request_logs_api_key", "api_key_id", "created_at"),
    sa.Index("ix_request_logs_virtual_key", "virtual_key_id", "created_at"),
    sa.Index("ix_request_logs_provider_model", "provider", "model", "created_at"),
    sa.Index("ix_request_logs_trace_id", "trace_id"),
    sa.Index("ix_request_logs_hooks_failed", "created_at",  # failures only: they are few
             postgresql_where=sa.text("hooks_failed"), sqlite_where=sa.text("hooks_failed = 1")),
)

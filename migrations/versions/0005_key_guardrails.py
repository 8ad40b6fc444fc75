"""Operators' guardrails: default input and output hooks on API keys and virtual keys, run on
every request made with the key whatever config the client sends.

Revision ID: 0005_key_guardrails
Revises: 0004_key_scopes
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_key_guardrails"
down_revision = "0004_key_scopes"
branch_labels = None
depends_on = None

# NULL (or an empty list) means no default guardrails; a list holds hooks as the admin gave
# them (Portkey's shorthand or full hook objects), validated when saved.
_TABLES = ("api_keys", "virtual_keys")
_COLUMNS = ("default_input_guardrails", "default_output_guardrails")


def upgrade() -> None:
    for table in _TABLES:
        for name in _COLUMNS:
            op.add_column(table, sa.Column(name, sa.JSON()))


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            for name in reversed(_COLUMNS):
                batch.drop_column(name)

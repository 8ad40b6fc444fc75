"""Trust boundary: what an API key may use, and which client custom hosts a virtual key's
secret may go to.

Revision ID: 0004_key_scopes
Revises: 0003_prompts
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_key_scopes"
down_revision = "0003_prompts"
branch_labels = None
depends_on = None

# NULL means unrestricted; a list (possibly empty) names what is allowed.
_API_KEY_COLUMNS = ("allowed_virtual_keys", "allowed_configs", "allowed_models")


def upgrade() -> None:
    for name in _API_KEY_COLUMNS:
        op.add_column("api_keys", sa.Column(name, sa.JSON()))
    op.add_column("virtual_keys", sa.Column("allowed_custom_hosts", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("virtual_keys") as batch:
        batch.drop_column("allowed_custom_hosts")
    with op.batch_alter_table("api_keys") as batch:
        for name in reversed(_API_KEY_COLUMNS):
            batch.drop_column(name)

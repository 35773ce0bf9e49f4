"""token purpose: API tokens, one-time web sign-in links and the web sessions they open

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing tokens are API tokens; sign-in links made before this revision stay usable as such
    # until they expire (an hour at most).
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("purpose", sa.String(length=20), server_default="api", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("purpose")

"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 10:23:08.846932
"""

from __future__ import annotations

from charter.storage.migrations.initial.create_first import create_first
from charter.storage.migrations.initial.create_second import create_second
from charter.storage.migrations.initial.drop import drop_all


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_first()
    create_second()


def downgrade() -> None:
    drop_all()

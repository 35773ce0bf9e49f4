"""txn_moments: the rollout gate's and charts' sums, kept at write time

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 16:00:00

Creates the table and fills it from the records already stored (per rollout, arm, metric and
minute, and per hour). The backfill's SQL is written out here rather than imported, so that this
migration keeps doing what it did when the application's code moves on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SPANS = (60, 3600)
_UPSERT_TAIL = """
ON CONFLICT (rollout_id, span, arm, metric, bucket) DO UPDATE SET
    n = txn_moments.n + excluded.n, total = txn_moments.total + excluded.total,
    squares = txn_moments.squares + excluded.squares
"""
_BACKFILL_SQLITE = """
INSERT INTO txn_moments (rollout_id, span, arm, metric, bucket, n, total, squares)
SELECT rollout_id, {span}, arm, j.key,
       CAST(strftime('%s', substr(time, 1, 19)) AS INTEGER) / {span} * {span} AS b,
       COUNT(*), SUM(j.value), SUM(j.value * j.value)
FROM transactions, json_each(transactions.metrics) AS j
WHERE rollout_id IS NOT NULL AND j.type IN ('integer', 'real')
GROUP BY rollout_id, arm, j.key, b
"""
_BACKFILL_PG = """
INSERT INTO txn_moments (rollout_id, span, arm, metric, bucket, n, total, squares)
SELECT rollout_id, {span}, arm, j.key,
       CAST(FLOOR(EXTRACT(EPOCH FROM time) / {span}) AS BIGINT) * {span} AS b,
       COUNT(*), SUM(CAST(j.value AS double precision)),
       SUM(CAST(j.value AS double precision) * CAST(j.value AS double precision))
FROM transactions, json_each_text(CAST(transactions.metrics AS json)) AS j
WHERE rollout_id IS NOT NULL AND json_typeof(CAST(transactions.metrics AS json) -> j.key) = 'number'
GROUP BY rollout_id, arm, j.key, b
"""


def upgrade() -> None:
    op.create_table(
        "txn_moments",
        sa.Column("rollout_id", sa.String(length=36), nullable=False),
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(length=10), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("squares", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("rollout_id", "span", "arm", "metric", "bucket", name=op.f("pk_txn_moments")),
    )
    template = _BACKFILL_SQLITE if op.get_bind().dialect.name == "sqlite" else _BACKFILL_PG
    for span in _SPANS:
        op.execute(template.format(span=span) + _UPSERT_TAIL)


def downgrade() -> None:
    op.drop_table("txn_moments")

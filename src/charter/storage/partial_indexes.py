"""The schema's partial unique indexes, attached to their tables when `schema.metadata` is first used.

They carry a PostgreSQL option (`postgresql_where`), and SQLAlchemy checks a dialect option by
importing that dialect: 0.14 G instructions, a tenth of a command on a SQLite store that never
creates an index. Queries do not need index definitions; DDL does, and everything that emits or
compares DDL (the migrations' environment, `metadata.create_all`/`drop_all`, Alembic's
autogenerate) reaches the tables through `schema.metadata`. The migration scripts create the same
indexes (tests/test_migrations.py compares).
"""

from __future__ import annotations

import sqlalchemy as sa

from charter.storage.schema import production_periods, rollouts

# a slot has at most one active rollout, whatever races the service might lose
sa.Index(
    "uq_rollouts_one_active_per_slot",
    rollouts.c.slot_id,
    unique=True,
    sqlite_where=sa.text("active = 1"),
    postgresql_where=sa.text("active"),
)
# and at most one open production period
sa.Index(
    "uq_production_periods_one_open_per_slot",
    production_periods.c.slot_id,
    unique=True,
    sqlite_where=sa.text("ended_at IS NULL"),
    postgresql_where=sa.text("ended_at IS NULL"),
)

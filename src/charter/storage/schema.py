"""The metadata schema (SQLAlchemy Core). Alembic migrations under `migrations/` create it.

Conventions: surrogate integer keys; names are slugs; every timestamp is timezone-aware UTC
(`UTCDateTime`); JSON documents that are hashed or must round-trip exactly are stored as canonical
JSON text, never as JSONB (PostgreSQL would renormalise numbers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every engine (SQLite stores it naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


NAME = sa.String(100)
USER = sa.String(100)
DIGEST = sa.String(64)

# --- identities ---------------------------------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("name", USER, nullable=False, unique=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role", sa.String(20), primary_key=True),
)

# --- the audit ledger ---------------------------------------------------------------------------

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("time", sa.String(32), nullable=False, index=True),
    sa.Column("actor", USER, nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False, index=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("previous_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# One row: the chain head. Locking it serialises writers (PostgreSQL: SELECT … FOR UPDATE).
ledger_head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# --- policies -----------------------------------------------------------------------------------

policies = sa.Table(
    "policies",
    metadata,
    _id(),
    sa.Column("version", sa.Integer, nullable=False, unique=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

# --- datasets -----------------------------------------------------------------------------------

datasets = sa.Table(
    "datasets",
    metadata,
    _id(),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    _id(),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # identity of the content: BLAKE3 of the canonical manifest
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("manifest_digest", DIGEST, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # files | table | iceberg | delta
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("sources", sa.Text, nullable=False),  # JSON list of URIs
    sa.Column("derived_from_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=True),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("file_count", sa.Integer, nullable=False),
    sa.Column("bytes_total", sa.BigInteger, nullable=False),
    sa.Column("bytes_new", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.Text, nullable=True),  # JSON: [{name, type}] for tabular versions
    sa.Column("row_count", sa.BigInteger, nullable=True),
    sa.Column("fingerprints_digest", DIGEST, nullable=True),  # sorted uint64 row fingerprints
    sa.Column("profile", sa.Text, nullable=True),  # JSON statistical profile
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("created_by", USER, nullable=False),
    sa.UniqueConstraint("dataset_id", "version"),
)

# --- models -------------------------------------------------------------------------------------

models = sa.Table(
    "models",
    metadata,
    _id(),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("primary_metrics", sa.Text, nullable=False),  # JSON {metric: "higher"|"lower"}
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    _id(),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("major", sa.Integer, nullable=False),
    sa.Column("minor", sa.Integer, nullable=False),
    sa.Column("patch", sa.Integer, nullable=False),
    sa.Column("spec", sa.Text, nullable=False),  # canonical JSON of the immutable spec
    sa.Column("spec_digest", DIGEST, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("tags", sa.Text, nullable=False, default="[]"),  # JSON list; mutable metadata
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
    sa.UniqueConstraint("model_id", "major", "minor", "patch"),
    sa.UniqueConstraint("model_id", "spec_digest", name="uq_model_versions_model_spec"),
)

model_training_datasets = sa.Table(
    "model_training_datasets",
    metadata,
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), primary_key=True),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", sa.String(40), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
)

alias_moves = sa.Table(
    "alias_moves",
    metadata,
    _id(),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", sa.String(40), nullable=False),
    sa.Column("from_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
    sa.Column("to_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
    sa.Column("kind", sa.String(20), nullable=False),  # promote | rollback | …
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", USER, nullable=False),
    sa.Column("audit_sequence", sa.BigInteger, nullable=True),
)

model_reviewers = sa.Table(
    "model_reviewers",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("user_name", USER, primary_key=True),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    _id(),
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False, index=True),
    sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),  # JSON {metric: number}
    sa.Column("overlap", sa.Text, nullable=False),  # JSON: overlap against each training dataset
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

contamination_waivers = sa.Table(
    "contamination_waivers",
    metadata,
    _id(),
    sa.Column("evaluation_id", sa.Integer, sa.ForeignKey("evaluations.id"), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

signoffs = sa.Table(
    "signoffs",
    metadata,
    _id(),
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False, index=True),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

promotions = sa.Table(
    "promotions",
    metadata,
    _id(),
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False, index=True),
    sa.Column("report", sa.Text, nullable=False),  # JSON gate report: every check with evidence
    sa.Column("rollback_plan", sa.Text, nullable=False),
    sa.Column("rollback_to_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

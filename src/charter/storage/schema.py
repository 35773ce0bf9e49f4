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

_metadata = sa.MetaData(
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


def __getattr__(name: str) -> sa.MetaData:
    """`metadata`: every table, with the partial indexes attached (on first use: they name a
    PostgreSQL option, and SQLAlchemy imports a dialect to check its options, which the commands
    that only query a SQLite store would pay for)."""
    if name != "metadata":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from charter.storage import partial_indexes  # noqa: F401 — attaches them, once

    return _metadata


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


NAME = sa.String(100)
USER = sa.String(100)
DIGEST = sa.String(64)

# --- identities ---------------------------------------------------------------------------------

users = sa.Table(
    "users",
    _metadata,
    _id(),
    sa.Column("name", USER, nullable=False, unique=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

user_roles = sa.Table(
    "user_roles",
    _metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role", sa.String(20), primary_key=True),
)

# --- the audit ledger ---------------------------------------------------------------------------

audit_events = sa.Table(
    "audit_events",
    _metadata,
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
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# --- policies -----------------------------------------------------------------------------------

policies = sa.Table(
    "policies",
    _metadata,
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
    _metadata,
    _id(),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

dataset_versions = sa.Table(
    "dataset_versions",
    _metadata,
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
    _metadata,
    _id(),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("primary_metrics", sa.Text, nullable=False),  # JSON {metric: "higher"|"lower"}
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    _metadata,
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
    _metadata,
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), primary_key=True),
)

model_aliases = sa.Table(
    "model_aliases",
    _metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", sa.String(40), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
)

alias_moves = sa.Table(
    "alias_moves",
    _metadata,
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
    _metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("user_name", USER, primary_key=True),
)

evaluations = sa.Table(
    "evaluations",
    _metadata,
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
    _metadata,
    _id(),
    sa.Column("evaluation_id", sa.Integer, sa.ForeignKey("evaluations.id"), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

signoffs = sa.Table(
    "signoffs",
    _metadata,
    _id(),
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False, index=True),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

promotions = sa.Table(
    "promotions",
    _metadata,
    _id(),
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False, index=True),
    sa.Column("report", sa.Text, nullable=False),  # JSON gate report: every check with evidence
    sa.Column("rollback_plan", sa.Text, nullable=False),
    sa.Column("rollback_to_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

# --- prompts ------------------------------------------------------------------------------------

prompts = sa.Table(
    "prompts",
    _metadata,
    _id(),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),  # mutable metadata
    sa.Column("tags", sa.Text, nullable=False, default="[]"),  # JSON list; mutable metadata
    sa.Column("head_version", sa.Integer, nullable=True),  # the latest: the version last synced
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

prompt_versions = sa.Table(
    "prompt_versions",
    _metadata,
    _id(),
    sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # canonical JSON of what the hash covers
    sa.Column("content_hash", DIGEST, nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # JSON: path, format, git commit/path/dirty
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("created_by", USER, nullable=False),
    sa.UniqueConstraint("prompt_id", "version"),
    sa.UniqueConstraint("prompt_id", "content_hash", name="uq_prompt_versions_prompt_content"),
)

# Every move of a prompt's head (its latest version): a sync that added a version or returned to
# an earlier one. Answers "which version was the latest at T".
prompt_heads = sa.Table(
    "prompt_heads",
    _metadata,
    _id(),
    sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=False, index=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("prompt_versions.id"), nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # JSON, as on prompt_versions
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", USER, nullable=False),
)

prompt_env_pointers = sa.Table(
    "prompt_env_pointers",
    _metadata,
    sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), primary_key=True),
    sa.Column("environment", sa.String(40), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("prompt_versions.id"), nullable=False),
)

prompt_env_moves = sa.Table(
    "prompt_env_moves",
    _metadata,
    _id(),
    sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=False),
    sa.Column("environment", sa.String(40), nullable=False),
    sa.Column("from_version_id", sa.Integer, sa.ForeignKey("prompt_versions.id"), nullable=True),
    sa.Column("to_version_id", sa.Integer, sa.ForeignKey("prompt_versions.id"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # promote | rollback
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", USER, nullable=False),
    sa.Column("audit_sequence", sa.BigInteger, nullable=True),
    sa.Index("ix_prompt_env_moves_prompt_environment", "prompt_id", "environment", "at"),
)

prompt_validations = sa.Table(
    "prompt_validations",
    _metadata,
    _id(),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("prompt_versions.id"), nullable=False, index=True),
    sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=False),
    sa.Column("runner", sa.Text, nullable=False),  # JSON: kind, identity
    sa.Column("sample_size", sa.Integer, nullable=False),
    sa.Column("passed_count", sa.Integer, nullable=False),
    sa.Column("pass_rate", sa.Float, nullable=False),
    sa.Column("min_pass_rate", sa.Float, nullable=False),
    sa.Column("min_samples", sa.Integer, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("failures", sa.Text, nullable=False),  # JSON: failed rows with inputs and reasons
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
    sa.Column("audit_sequence", sa.BigInteger, nullable=True),
)

# --- deployment tracks: slots, releases, rollouts, incidents, production records ----------------

slots = sa.Table(
    "slots",
    _metadata,
    _id(),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("policy_name", NAME, nullable=False),  # a track policy of the `tracks` section, or a file's
    sa.Column("policy_document", sa.Text, nullable=True),  # canonical JSON when given as a file
    sa.Column("routing_version", sa.Integer, nullable=False, default=0),  # bumped on every table change
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

releases = sa.Table(
    "releases",
    _metadata,
    _id(),
    sa.Column("slot_id", sa.Integer, sa.ForeignKey("slots.id"), nullable=False, index=True),
    sa.Column("digest", DIGEST, nullable=False, unique=True),  # SHA-256 of `document`
    sa.Column("document", sa.Text, nullable=False),  # canonical JSON of the bundle
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("params", sa.Text, nullable=False),  # JSON: the release's parameter overrides
    sa.Column("retrieval_index_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=True),
    sa.Column("app_version", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
)

release_prompts = sa.Table(
    "release_prompts",
    _metadata,
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("prompt_version_id", sa.Integer, sa.ForeignKey("prompt_versions.id"), nullable=False),
)

rollouts = sa.Table(
    "rollouts",
    _metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # UUIDv7; also the routing salt
    sa.Column("slot_id", sa.Integer, sa.ForeignKey("slots.id"), nullable=False, index=True),
    sa.Column("baseline_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("candidate_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("policy_document", sa.Text, nullable=False),  # the pinned track policy (canonical JSON)
    sa.Column("state", sa.Text, nullable=False),  # canonical JSON of the domain Rollout
    sa.Column("phase", sa.String(20), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("rollback_plan", sa.Text, nullable=False),
    sa.Column("gate_report", sa.Text, nullable=True),  # JSON: pre-traffic checks, once evaluated
    sa.Column("revision", sa.Integer, nullable=False),  # number of transitions applied
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("started_by", USER, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    # a slot has at most one active rollout: a partial unique index, in `partial_indexes`
)

rollout_transitions = sa.Table(
    "rollout_transitions",
    _metadata,
    _id(),
    sa.Column("rollout_id", sa.String(36), sa.ForeignKey("rollouts.id"), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("from_status", sa.String(120), nullable=True),
    sa.Column("to_status", sa.String(120), nullable=False),
    sa.Column("stage", sa.String(100), nullable=False),  # the stage after the transition
    sa.Column("traffic", sa.Float, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON: verdict, override, reason, item, …
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", USER, nullable=False),
    sa.Column("audit_sequence", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("rollout_id", "revision"),
)

incidents = sa.Table(
    "incidents",
    _metadata,
    _id(),
    sa.Column("slot_id", sa.Integer, sa.ForeignKey("slots.id"), nullable=False),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("rollout_id", sa.String(36), sa.ForeignKey("rollouts.id"), nullable=True),
    sa.Column("severity", sa.String(2), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("reported_by", USER, nullable=False),
    sa.Column("audit_sequence", sa.BigInteger, nullable=False),
    sa.Index("ix_incidents_release_at", "release_id", "at"),
)

# When each release was a slot's production release: "when was this model version in production".
production_periods = sa.Table(
    "production_periods",
    _metadata,
    _id(),
    sa.Column("slot_id", sa.Integer, sa.ForeignKey("slots.id"), nullable=False),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # bootstrap | rollout | rollback
    sa.Column("rollout_id", sa.String(36), sa.ForeignKey("rollouts.id"), nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("started_by", USER, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("audit_sequence", sa.BigInteger, nullable=False),
    sa.Index("ix_production_periods_slot_started", "slot_id", "started_at"),
    # at most one open period per slot: a partial unique index, in `partial_indexes`
)

# The metrics a rollout observed on its candidate, stored on the model and prompt versions it promoted.
production_metrics = sa.Table(
    "production_metrics",
    _metadata,
    _id(),
    sa.Column("rollout_id", sa.String(36), sa.ForeignKey("rollouts.id"), nullable=False),
    sa.Column("slot_id", sa.Integer, sa.ForeignKey("slots.id"), nullable=False),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True, index=True),
    sa.Column(
        "prompt_version_id", sa.Integer, sa.ForeignKey("prompt_versions.id"), nullable=True, index=True
    ),
    sa.Column("metrics", sa.Text, nullable=False),  # JSON: metric → {count, mean, sd} per arm
    sa.Column("window_from", UTCDateTime, nullable=False),
    sa.Column("window_to", UTCDateTime, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
)

# Transaction records: data, not audit events (no ledger row each). No foreign keys, for ingest speed:
# the writer resolves slot and release ids from the registry itself.
transactions = sa.Table(
    "transactions",
    _metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # UUIDv7
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("slot_id", sa.Integer, nullable=False),
    sa.Column("release_id", sa.Integer, nullable=False),
    sa.Column("arm", sa.String(10), nullable=False),  # baseline | candidate | shadow
    sa.Column("rollout_id", sa.String(36), nullable=True),
    sa.Column("stage", sa.String(100), nullable=True),
    sa.Column("table_version", sa.Integer, nullable=True),
    sa.Column("stale", sa.Boolean, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("key", sa.String(200), nullable=True),
    sa.Column("metrics", sa.Text, nullable=False),  # JSON {metric: number}
    sa.Column("inputs", sa.Text, nullable=True),  # JSON {feature: value}, sampled
    sa.Column("parent_id", sa.String(36), nullable=True),  # a shadow record's served transaction
    sa.Index("ix_transactions_slot_time", "slot_id", "time"),
    sa.Index("ix_transactions_rollout_arm_time", "rollout_id", "arm", "time"),
)

# The rollout gate's and charts' sums, kept at write time in the records' own transaction (see
# storage/txn_moments.py): per rollout, arm, metric and time bucket (`span` seconds long — 60 and
# 3600 — starting at `bucket`, Unix seconds), COUNT, SUM and SUM of squares of the metric.
txn_moments = sa.Table(
    "txn_moments",
    _metadata,
    sa.Column("rollout_id", sa.String(36), primary_key=True),
    sa.Column("span", sa.Integer, primary_key=True),
    sa.Column("arm", sa.String(10), primary_key=True),
    sa.Column("metric", sa.String(200), primary_key=True),
    sa.Column("bucket", sa.BigInteger, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("squares", sa.Float, nullable=False),
)

# --- the server: API tokens, webhooks and their outbox, ledger checkpoints, job leases ----------

# API tokens: only the SHA-256 of the secret is kept (a leaked table cannot be replayed).
api_tokens = sa.Table(
    "api_tokens",
    _metadata,
    _id(),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    # api (any client) | signin-link (one web sign-in, then revoked) | web-session (made by that sign-in)
    sa.Column("purpose", sa.String(20), nullable=False, server_default="api"),
    sa.Column("digest", DIGEST, nullable=False, unique=True),  # hex SHA-256 of the secret
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("revoked_by", USER, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
)

webhooks = sa.Table(
    "webhooks",
    _metadata,
    _id(),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", sa.String(300), nullable=False),  # glob over actions: "model.*,rollout.*"
    sa.Column("secret", sa.String(200), nullable=True),  # HMAC-SHA256 key; never in the ledger
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", USER, nullable=False),
    sa.Column("removed_at", UTCDateTime, nullable=True),
    sa.Column("removed_by", USER, nullable=True),
)

# One row per (webhook, audited event) to deliver, written in the event's own transaction.
webhook_outbox = sa.Table(
    "webhook_outbox",
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),  # the audit event's sequence
    sa.Column("status", sa.String(12), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_status", sa.Integer, nullable=True),  # HTTP status of the last attempt
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("webhook_id", "sequence"),
    sa.Index("ix_webhook_outbox_status_next", "status", "next_attempt_at"),
)

# Signed chain heads (Ed25519). The key lives outside the database; `key_id` names its public half.
checkpoints = sa.Table(
    "checkpoints",
    _metadata,
    _id(),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("signed_at", UTCDateTime, nullable=False),
    sa.Column("signed_by", USER, nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),  # hex SHA-256 of the raw public key
    sa.Column("signature", sa.String(128), nullable=False),  # hex Ed25519 signature
)

# Leases for background jobs: one holder per job across server processes, handed over on expiry.
job_leases = sa.Table(
    "job_leases",
    _metadata,
    sa.Column("job", sa.String(60), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),  # fencing token, +1 per new holder
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

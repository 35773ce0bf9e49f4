"""Migration 0001, second half: the tables that refer to the first half."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import charter.storage.schema


def create_second() -> None:
    op.create_table(
        "prompt_env_pointers",
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=40), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompts.id"], name=op.f("fk_prompt_env_pointers_prompt_id_prompts")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["prompt_versions.id"],
            name=op.f("fk_prompt_env_pointers_version_id_prompt_versions"),
        ),
        sa.PrimaryKeyConstraint("prompt_id", "environment", name=op.f("pk_prompt_env_pointers")),
    )
    op.create_table(
        "prompt_heads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompts.id"], name=op.f("fk_prompt_heads_prompt_id_prompts")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["prompt_versions.id"], name=op.f("fk_prompt_heads_version_id_prompt_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_heads")),
    )
    with op.batch_alter_table("prompt_heads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_heads_prompt_id"), ["prompt_id"], unique=False)

    op.create_table(
        "prompt_validations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("dataset_version_id", sa.Integer(), nullable=False),
        sa.Column("runner", sa.Text(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("passed_count", sa.Integer(), nullable=False),
        sa.Column("pass_rate", sa.Float(), nullable=False),
        sa.Column("min_pass_rate", sa.Float(), nullable=False),
        sa.Column("min_samples", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("failures", sa.Text(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("created_at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("audit_sequence", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_prompt_validations_dataset_version_id_dataset_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["prompt_versions.id"],
            name=op.f("fk_prompt_validations_version_id_prompt_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_validations")),
    )
    with op.batch_alter_table("prompt_validations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_validations_version_id"), ["version_id"], unique=False)

    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("retrieval_index_id", sa.Integer(), nullable=True),
        sa.Column("app_version", sa.String(length=200), nullable=True),
        sa.Column("created_at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_releases_model_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["retrieval_index_id"],
            ["dataset_versions.id"],
            name=op.f("fk_releases_retrieval_index_id_dataset_versions"),
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slots.id"], name=op.f("fk_releases_slot_id_slots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
        sa.UniqueConstraint("digest", name=op.f("uq_releases_digest")),
    )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_releases_slot_id"), ["slot_id"], unique=False)

    op.create_table(
        "signoffs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_signoffs_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signoffs")),
    )
    with op.batch_alter_table("signoffs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signoffs_model_version_id"), ["model_version_id"], unique=False)

    op.create_table(
        "contamination_waivers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_contamination_waivers_evaluation_id_evaluations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contamination_waivers")),
    )
    with op.batch_alter_table("contamination_waivers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contamination_waivers_evaluation_id"), ["evaluation_id"], unique=False
        )

    op.create_table(
        "release_prompts",
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("prompt_version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_version_id"],
            ["prompt_versions.id"],
            name=op.f("fk_release_prompts_prompt_version_id_prompt_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_release_prompts_release_id_releases")
        ),
        sa.PrimaryKeyConstraint("release_id", "position", name=op.f("pk_release_prompts")),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("baseline_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("policy_document", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("rollback_plan", sa.Text(), nullable=False),
        sa.Column("gate_report", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("started_at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.Column("ended_at", charter.storage.schema.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["baseline_id"], ["releases.id"], name=op.f("fk_rollouts_baseline_id_releases")
        ),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["releases.id"], name=op.f("fk_rollouts_candidate_id_releases")
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slots.id"], name=op.f("fk_rollouts_slot_id_slots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rollouts_slot_id"), ["slot_id"], unique=False)
        batch_op.create_index(
            "uq_rollouts_one_active_per_slot",
            ["slot_id"],
            unique=True,
            sqlite_where=sa.text("active = 1"),
            postgresql_where=sa.text("active"),
        )

    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", sa.String(length=36), nullable=True),
        sa.Column("severity", sa.String(length=2), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reported_by", sa.String(length=100), nullable=False),
        sa.Column("audit_sequence", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_incidents_release_id_releases")
        ),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_incidents_rollout_id_rollouts")
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slots.id"], name=op.f("fk_incidents_slot_id_slots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_release_at", ["release_id", "at"], unique=False)

    op.create_table(
        "production_metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.String(length=36), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("prompt_version_id", sa.Integer(), nullable=True),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("window_from", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_to", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_production_metrics_model_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["prompt_version_id"],
            ["prompt_versions.id"],
            name=op.f("fk_production_metrics_prompt_version_id_prompt_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_production_metrics_release_id_releases")
        ),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_production_metrics_rollout_id_rollouts")
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slots.id"], name=op.f("fk_production_metrics_slot_id_slots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_metrics")),
    )
    with op.batch_alter_table("production_metrics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_production_metrics_model_version_id"), ["model_version_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_production_metrics_prompt_version_id"), ["prompt_version_id"], unique=False
        )

    op.create_table(
        "production_periods",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("rollout_id", sa.String(length=36), nullable=True),
        sa.Column("started_at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.Column("ended_at", charter.storage.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("audit_sequence", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_production_periods_release_id_releases")
        ),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_production_periods_rollout_id_rollouts")
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slots.id"], name=op.f("fk_production_periods_slot_id_slots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_periods")),
    )
    with op.batch_alter_table("production_periods", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_production_periods_release_id"), ["release_id"], unique=False)
        batch_op.create_index("ix_production_periods_slot_started", ["slot_id", "started_at"], unique=False)
        batch_op.create_index(
            "uq_production_periods_one_open_per_slot",
            ["slot_id"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    op.create_table(
        "rollout_transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=120), nullable=True),
        sa.Column("to_status", sa.String(length=120), nullable=False),
        sa.Column("stage", sa.String(length=100), nullable=False),
        sa.Column("traffic", sa.Float(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("at", charter.storage.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("audit_sequence", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_rollout_transitions_rollout_id_rollouts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_transitions")),
        sa.UniqueConstraint("rollout_id", "revision", name=op.f("uq_rollout_transitions_rollout_id")),
    )
    # ### end Alembic commands ###

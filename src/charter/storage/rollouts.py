"""Rollout tables: rollouts (the persisted state machine), their transitions, incidents, and the
production metrics rollouts observed on the versions they promoted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.domain.canonical import canonical_json
from charter.storage.schema import (
    incidents,
    production_metrics,
    releases,
    rollout_transitions,
    rollouts,
    slots,
)


@dataclass(frozen=True)
class RolloutRecord:
    id: str
    slot_id: int
    slot: str
    baseline_id: int
    candidate_id: int
    policy_document: dict[str, Any]
    state: dict[str, Any]
    phase: str
    active: bool
    rollback_plan: str
    gate_report: dict[str, Any] | None
    revision: int
    started_at: datetime
    started_by: str
    ended_at: datetime | None


@dataclass(frozen=True)
class TransitionRecord:
    rollout_id: str
    revision: int
    action: str
    from_status: str | None
    to_status: str
    stage: str
    traffic: float
    evidence: dict[str, Any]
    at: datetime
    actor: str
    audit_sequence: int


@dataclass(frozen=True)
class IncidentRecord:
    id: int
    slot: str
    release_id: int
    release: str  # digest
    rollout_id: str | None
    severity: str
    summary: str
    at: datetime
    reported_by: str
    audit_sequence: int


def _json(value: Any) -> str:
    return canonical_json(value).decode()


_ROLLOUTS = sa.select(rollouts, slots.c.name.label("slot_name")).join(slots, slots.c.id == rollouts.c.slot_id)
_PRODUCTION_METRICS = (
    sa.select(production_metrics, slots.c.name.label("slot_name"), releases.c.digest)
    .join(slots, slots.c.id == production_metrics.c.slot_id)
    .join(releases, releases.c.id == production_metrics.c.release_id)
)
# Precompiled reads for `trace` (bind values only, no statement built per call).
_ROLLOUT_BY_ID = _ROLLOUTS.where(rollouts.c.id == sa.bindparam("rollout_id"))
_TRANSITIONS_OF = (
    sa.select(rollout_transitions)
    .where(rollout_transitions.c.rollout_id == sa.bindparam("rollout_id"))
    .order_by(rollout_transitions.c.revision)
)
_MODEL_PRODUCTION_METRICS = _PRODUCTION_METRICS.where(
    production_metrics.c.model_version_id == sa.bindparam("model_version_id")
).order_by(production_metrics.c.id)
_INCIDENTS = (
    sa.select(incidents, slots.c.name.label("slot_name"), releases.c.digest)
    .join(slots, slots.c.id == incidents.c.slot_id)
    .join(releases, releases.c.id == incidents.c.release_id)
)


class RolloutRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- rollouts -------------------------------------------------------------------------------

    def insert_rollout(
        self,
        rollout_id: str,
        slot_id: int,
        *,
        baseline_id: int,
        candidate_id: int,
        policy_document: Mapping[str, Any],
        state: Mapping[str, Any],
        rollback_plan: str,
        gate_report: Mapping[str, Any] | None,
        at: datetime,
        by: str,
    ) -> None:
        self.conn.execute(
            sa.insert(rollouts).values(
                id=rollout_id,
                slot_id=slot_id,
                baseline_id=baseline_id,
                candidate_id=candidate_id,
                policy_document=_json(policy_document),
                state=_json(state),
                phase=state["phase"],
                active=True,
                rollback_plan=rollback_plan,
                gate_report=None if gate_report is None else _json(gate_report),
                revision=1,  # the start is the first transition
                started_at=at,
                started_by=by,
                ended_at=None,
            )
        )

    def update_rollout(
        self,
        rollout_id: str,
        *,
        expected_revision: int,
        state: Mapping[str, Any],
        active: bool,
        ended_at: datetime | None,
        gate_report: Mapping[str, Any] | None = None,
    ) -> int:
        """Store the rollout's new state, if nobody changed it since `expected_revision` was read."""
        values: dict[str, Any] = {
            "state": _json(state),
            "phase": state["phase"],
            "active": active,
            "ended_at": ended_at,
            "revision": expected_revision + 1,
        }
        if gate_report is not None:
            values["gate_report"] = _json(gate_report)
        result = self.conn.execute(
            sa.update(rollouts)
            .where(rollouts.c.id == rollout_id, rollouts.c.revision == expected_revision)
            .values(**values)
        )
        if result.rowcount != 1:
            raise RuntimeError(
                f"rollout {rollout_id} changed concurrently (expected revision {expected_revision})"
            )
        return expected_revision + 1

    def add_transition(self, record: TransitionRecord) -> None:
        self.conn.execute(
            sa.insert(rollout_transitions).values(
                rollout_id=record.rollout_id,
                revision=record.revision,
                action=record.action,
                from_status=record.from_status,
                to_status=record.to_status,
                stage=record.stage,
                traffic=record.traffic,
                evidence=_json(record.evidence),
                at=record.at,
                actor=record.actor,
                audit_sequence=record.audit_sequence,
            )
        )

    def rollout(self, rollout_id: str) -> RolloutRecord | None:
        row = self.conn.execute(_ROLLOUTS.where(rollouts.c.id == rollout_id)).one_or_none()
        return None if row is None else _rollout(row)

    def active_rollout(self, slot_id: int) -> RolloutRecord | None:
        row = self.conn.execute(
            _ROLLOUTS.where(rollouts.c.slot_id == slot_id, rollouts.c.active.is_(True))
        ).one_or_none()
        return None if row is None else _rollout(row)

    def active_rollouts(self) -> list[RolloutRecord]:
        rows = self.conn.execute(_ROLLOUTS.where(rollouts.c.active.is_(True)).order_by(slots.c.name))
        return [_rollout(row) for row in rows]

    def rollouts_of(self, slot_id: int) -> list[RolloutRecord]:
        rows = self.conn.execute(
            _ROLLOUTS.where(rollouts.c.slot_id == slot_id).order_by(rollouts.c.started_at, rollouts.c.id)
        )
        return [_rollout(row) for row in rows]

    def latest_rollout(self, slot_id: int) -> RolloutRecord | None:
        found = self.rollouts_of(slot_id)
        return found[-1] if found else None

    def transitions(self, rollout_id: str) -> list[TransitionRecord]:
        rows = self.conn.execute(
            sa.select(rollout_transitions)
            .where(rollout_transitions.c.rollout_id == rollout_id)
            .order_by(rollout_transitions.c.revision)
        )
        return [_transition(r) for r in rows]

    def rollout_with_transitions(
        self, rollout_id: str
    ) -> tuple[RolloutRecord, list[TransitionRecord]] | None:
        """`rollout` and `transitions` in two precompiled statements (None: no such rollout)."""
        row = self.conn.execute(_ROLLOUT_BY_ID, {"rollout_id": rollout_id}).one_or_none()
        if row is None:
            return None
        steps = [_transition(r) for r in self.conn.execute(_TRANSITIONS_OF, {"rollout_id": rollout_id})]
        return _rollout(row), steps

    # --- incidents ------------------------------------------------------------------------------

    def add_incident(
        self,
        slot_id: int,
        release_id: int,
        rollout_id: str | None,
        severity: str,
        summary: str,
        *,
        at: datetime,
        by: str,
        audit_sequence: int,
    ) -> IncidentRecord:
        key = self.conn.execute(
            sa.insert(incidents).values(
                slot_id=slot_id,
                release_id=release_id,
                rollout_id=rollout_id,
                severity=severity,
                summary=summary,
                at=at,
                reported_by=by,
                audit_sequence=audit_sequence,
            )
        ).inserted_primary_key
        assert key is not None
        return _incident(self.conn.execute(_INCIDENTS.where(incidents.c.id == int(key[0]))).one())

    def incident_counts(self, release_id: int, since: datetime, until: datetime) -> dict[str, int]:
        """severity → incidents reported against a release in [since, until]."""
        rows = self.conn.execute(
            sa.select(incidents.c.severity, sa.func.count())
            .where(incidents.c.release_id == release_id, incidents.c.at >= since, incidents.c.at <= until)
            .group_by(incidents.c.severity)
        )
        return {str(s): int(n) for s, n in rows}

    def incidents_of(self, slot_id: int) -> list[IncidentRecord]:
        rows = self.conn.execute(_INCIDENTS.where(incidents.c.slot_id == slot_id).order_by(incidents.c.id))
        return [_incident(row) for row in rows]

    # --- production metrics ---------------------------------------------------------------------

    def add_production_metrics(
        self,
        *,
        rollout_id: str,
        slot_id: int,
        release_id: int,
        model_version_id: int | None,
        prompt_version_id: int | None,
        metrics: Mapping[str, Any],
        window: tuple[datetime, datetime],
        at: datetime,
    ) -> None:
        self.conn.execute(
            sa.insert(production_metrics).values(
                rollout_id=rollout_id,
                slot_id=slot_id,
                release_id=release_id,
                model_version_id=model_version_id,
                prompt_version_id=prompt_version_id,
                metrics=_json(dict(metrics)),
                window_from=window[0],
                window_to=window[1],
                recorded_at=at,
            )
        )

    def production_metrics(
        self, *, model_version_id: int | None = None, prompt_version_id: int | None = None
    ) -> list[dict[str, Any]]:
        """What rollouts observed for a model or prompt version, oldest first."""
        query = _PRODUCTION_METRICS
        if model_version_id is not None:
            query = query.where(production_metrics.c.model_version_id == model_version_id)
        if prompt_version_id is not None:
            query = query.where(production_metrics.c.prompt_version_id == prompt_version_id)
        return [_observed(r) for r in self.conn.execute(query.order_by(production_metrics.c.id))]

    def model_production_metrics(self, model_version_id: int) -> list[dict[str, Any]]:
        """`production_metrics(model_version_id=…)` in one precompiled statement."""
        rows = self.conn.execute(_MODEL_PRODUCTION_METRICS, {"model_version_id": model_version_id})
        return [_observed(r) for r in rows]


def _observed(r: Any) -> dict[str, Any]:
    return {
        "slot": r.slot_name,
        "release": r.digest,
        "rollout": r.rollout_id,
        "window": {"from": r.window_from.isoformat(), "to": r.window_to.isoformat()},
        "metrics": json.loads(r.metrics),
        "recorded_at": r.recorded_at.isoformat(),
    }


def _transition(r: Any) -> TransitionRecord:
    return TransitionRecord(
        r.rollout_id,
        r.revision,
        r.action,
        r.from_status,
        r.to_status,
        r.stage,
        float(r.traffic),
        json.loads(r.evidence),
        r.at,
        r.actor,
        int(r.audit_sequence),
    )


def _rollout(row: Any) -> RolloutRecord:
    return RolloutRecord(
        id=row.id,
        slot_id=row.slot_id,
        slot=row.slot_name,
        baseline_id=row.baseline_id,
        candidate_id=row.candidate_id,
        policy_document=json.loads(row.policy_document),
        state=json.loads(row.state),
        phase=row.phase,
        active=bool(row.active),
        rollback_plan=row.rollback_plan,
        gate_report=None if row.gate_report is None else json.loads(row.gate_report),
        revision=int(row.revision),
        started_at=row.started_at,
        started_by=row.started_by,
        ended_at=row.ended_at,
    )


def _incident(row: Any) -> IncidentRecord:
    return IncidentRecord(
        row.id,
        row.slot_name,
        row.release_id,
        row.digest,
        row.rollout_id,
        row.severity,
        row.summary,
        row.at,
        row.reported_by,
        int(row.audit_sequence),
    )

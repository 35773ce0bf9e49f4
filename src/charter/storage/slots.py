"""Deployment-track tables: slots, releases and production periods (the rollouts' own tables are in
`charter.storage.rollouts`), and the slot-state read over the audit ledger."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.domain.canonical import canonical_json
from charter.storage.schema import (
    audit_events,
    model_versions,
    models,
    production_periods,
    release_prompts,
    releases,
    slots,
)


@dataclass(frozen=True)
class SlotRecord:
    id: int
    name: str
    policy_name: str
    policy_document: dict[str, Any] | None  # the slot's own track policy, when given as a file
    routing_version: int
    created_at: datetime
    created_by: str

    @property
    def subject(self) -> str:
        return f"slot:{self.name}"


@dataclass(frozen=True)
class ReleaseRecord:
    id: int
    slot_id: int
    slot: str
    digest: str
    document: dict[str, Any]  # what the digest covers
    model_version_id: int
    prompt_version_ids: tuple[int, ...]
    params: dict[str, Any]
    retrieval_index_id: int | None
    app_version: str | None
    created_at: datetime
    created_by: str

    @property
    def short(self) -> str:
        return self.digest[:12]


@dataclass(frozen=True)
class PeriodRecord:
    id: int
    slot: str
    release_id: int
    release: str  # digest
    kind: str  # bootstrap | rollout | rollback
    rollout_id: str | None
    started_at: datetime
    started_by: str
    ended_at: datetime | None
    audit_sequence: int


def _json(value: Any) -> str:
    return canonical_json(value).decode()


_SLOTS = sa.select(slots)
_RELEASES = sa.select(releases, slots.c.name.label("slot_name")).join(slots, slots.c.id == releases.c.slot_id)
_PERIODS = (
    sa.select(production_periods, slots.c.name.label("slot_name"), releases.c.digest)
    .join(slots, slots.c.id == production_periods.c.slot_id)
    .join(releases, releases.c.id == production_periods.c.release_id)
)
# Precompiled reads for `trace` (bind values only, no statement built per call).
_RELEASE_WITH_PROMPTS = (
    _RELEASES.add_columns(release_prompts.c.prompt_version_id)
    .outerjoin(release_prompts, release_prompts.c.release_id == releases.c.id)
    .where(releases.c.id == sa.bindparam("release_id"))
    .order_by(release_prompts.c.position)
)
_SLOT_PERIODS = _PERIODS.where(production_periods.c.slot_id == sa.bindparam("slot_id")).order_by(
    production_periods.c.started_at, production_periods.c.id
)
_HEX_AFTER_F = "g"  # the character after the last hex digit: prefix ranges end there


class SlotRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- slots ----------------------------------------------------------------------------------

    def slot(self, name: str) -> SlotRecord | None:
        row = self.conn.execute(_SLOTS.where(slots.c.name == name)).one_or_none()
        return None if row is None else _slot(row)

    def slot_by_id(self, slot_id: int) -> SlotRecord:
        return _slot(self.conn.execute(_SLOTS.where(slots.c.id == slot_id)).one())

    def all_slots(self) -> list[SlotRecord]:
        return [_slot(row) for row in self.conn.execute(_SLOTS.order_by(slots.c.name))]

    def create_slot(
        self, name: str, policy_name: str, policy_document: Mapping[str, Any] | None, *, at: datetime, by: str
    ) -> SlotRecord:
        self.conn.execute(
            sa.insert(slots).values(
                name=name,
                policy_name=policy_name,
                policy_document=None if policy_document is None else _json(policy_document),
                routing_version=0,
                created_at=at,
                created_by=by,
            )
        )
        found = self.slot(name)
        assert found is not None
        return found

    def bump_routing(self, slot_id: int) -> int:
        """Increment the slot's routing-table version; returns the new one."""
        self.conn.execute(
            sa.update(slots).where(slots.c.id == slot_id).values(routing_version=slots.c.routing_version + 1)
        )
        return int(
            self.conn.execute(sa.select(slots.c.routing_version).where(slots.c.id == slot_id)).scalar_one()
        )

    def routing_versions(self) -> dict[str, int]:
        return {
            str(n): int(v) for n, v in self.conn.execute(sa.select(slots.c.name, slots.c.routing_version))
        }

    # --- releases -------------------------------------------------------------------------------

    def insert_release(
        self,
        slot_id: int,
        digest: str,
        document: Mapping[str, Any],
        *,
        model_version_id: int,
        prompt_version_ids: Sequence[int],
        params: Mapping[str, Any],
        retrieval_index_id: int | None,
        app_version: str | None,
        at: datetime,
        by: str,
    ) -> ReleaseRecord:
        key = self.conn.execute(
            sa.insert(releases).values(
                slot_id=slot_id,
                digest=digest,
                document=_json(document),
                model_version_id=model_version_id,
                params=_json(dict(params)),
                retrieval_index_id=retrieval_index_id,
                app_version=app_version,
                created_at=at,
                created_by=by,
            )
        ).inserted_primary_key
        assert key is not None
        release_id = int(key[0])
        if prompt_version_ids:
            self.conn.execute(
                sa.insert(release_prompts),
                [
                    {"release_id": release_id, "position": i, "prompt_version_id": v}
                    for i, v in enumerate(prompt_version_ids)
                ],
            )
        return self.release_by_id(release_id)

    def release_by_id(self, release_id: int) -> ReleaseRecord:
        return self._release(self.conn.execute(_RELEASES.where(releases.c.id == release_id)).one())

    def release_by_digest(self, digest: str) -> ReleaseRecord | None:
        row = self.conn.execute(_RELEASES.where(releases.c.digest == digest)).one_or_none()
        return None if row is None else self._release(row)

    def releases_by_prefix(self, prefix: str, limit: int = 5) -> list[ReleaseRecord]:
        """Releases whose digest starts with `prefix` (lower-case hex): a range scan of the unique index."""
        query = (
            _RELEASES.where(releases.c.digest >= prefix, releases.c.digest < prefix + _HEX_AFTER_F)
            .order_by(releases.c.digest)
            .limit(limit)
        )
        return [self._release(row) for row in self.conn.execute(query)]

    def releases_of(self, slot_id: int) -> list[ReleaseRecord]:
        rows = self.conn.execute(_RELEASES.where(releases.c.slot_id == slot_id).order_by(releases.c.id))
        return [self._release(row) for row in rows]

    def release_ids(self, slot_id: int | None = None) -> dict[str, int]:
        """digest → id (of one slot, if given): the transaction writer's lookup table."""
        query = sa.select(releases.c.digest, releases.c.id)
        if slot_id is not None:
            query = query.where(releases.c.slot_id == slot_id)
        return {str(d): int(i) for d, i in self.conn.execute(query)}

    def releases_with_model(self, model_id: int) -> list[tuple[ReleaseRecord, str]]:
        """Every release whose model version belongs to the model, with that version as X.Y.Z."""
        query = (
            _RELEASES.add_columns(model_versions.c.major, model_versions.c.minor, model_versions.c.patch)
            .join(model_versions, model_versions.c.id == releases.c.model_version_id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.id == model_id)
            .order_by(releases.c.id)
        )
        return [
            (self._release(row), f"{row.major}.{row.minor}.{row.patch}") for row in self.conn.execute(query)
        ]

    def release_record(self, release_id: int) -> ReleaseRecord:
        """`release_by_id` in one precompiled statement (the release joined with its prompts)."""
        rows = self.conn.execute(_RELEASE_WITH_PROMPTS, {"release_id": release_id}).all()
        if not rows:
            raise sa.exc.NoResultFound(f"no release with id {release_id}")
        prompt_ids = [row.prompt_version_id for row in rows if row.prompt_version_id is not None]
        return _release_record(rows[0], prompt_ids)

    def _release(self, row: Any) -> ReleaseRecord:
        prompt_ids = self.conn.execute(
            sa.select(release_prompts.c.prompt_version_id)
            .where(release_prompts.c.release_id == row.id)
            .order_by(release_prompts.c.position)
        ).scalars()
        return _release_record(row, prompt_ids)

    # --- production periods ---------------------------------------------------------------------

    def production(self, slot_id: int) -> PeriodRecord | None:
        """The open production period of a slot: its production release now."""
        row = self.conn.execute(
            _PERIODS.where(production_periods.c.slot_id == slot_id, production_periods.c.ended_at.is_(None))
        ).one_or_none()
        return None if row is None else _period(row)

    def periods(
        self, *, slot_id: int | None = None, release_ids: Iterable[int] | None = None
    ) -> list[PeriodRecord]:
        query = _PERIODS
        if slot_id is not None:
            query = query.where(production_periods.c.slot_id == slot_id)
        if release_ids is not None:
            query = query.where(production_periods.c.release_id.in_(list(release_ids)))
        rows = self.conn.execute(query.order_by(production_periods.c.started_at, production_periods.c.id))
        return [_period(row) for row in rows]

    def slot_periods(self, slot_id: int) -> list[PeriodRecord]:
        """`periods(slot_id=…)` in one precompiled statement."""
        return [_period(row) for row in self.conn.execute(_SLOT_PERIODS, {"slot_id": slot_id})]

    def start_period(
        self,
        slot_id: int,
        release_id: int,
        *,
        kind: str,
        rollout_id: str | None,
        at: datetime,
        by: str,
        audit_sequence: int,
    ) -> None:
        """Close the slot's open period (if any) at `at` and open one for `release_id`."""
        self.conn.execute(
            sa.update(production_periods)
            .where(production_periods.c.slot_id == slot_id, production_periods.c.ended_at.is_(None))
            .values(ended_at=at)
        )
        self.conn.execute(
            sa.insert(production_periods).values(
                slot_id=slot_id,
                release_id=release_id,
                kind=kind,
                rollout_id=rollout_id,
                started_at=at,
                started_by=by,
                ended_at=None,
                audit_sequence=audit_sequence,
            )
        )


# --- slot state over the audit ledger ---------------------------------------------------------------

_STATE_ACTIONS = sa.or_(
    audit_events.c.action.in_(("slot.bootstrapped", "slot.rolled_back")),
    audit_events.c.action.startswith("rollout."),
)


def state_events(
    conn: Connection, subject: str, until: str
) -> tuple[tuple[int, dict[str, Any]] | None, tuple[int, str, dict[str, Any]] | None]:
    """The audit events a slot's state at a time is read from: its `slot.created` event, and the
    last event before `until` (a ledger time string, exclusive) that set its production release or
    rollout state — every such event carries that whole state in its payload. (sequence, payload)."""
    created = conn.execute(
        sa.select(audit_events.c.sequence, audit_events.c.payload)
        .where(
            audit_events.c.subject == subject,
            audit_events.c.action == "slot.created",
            audit_events.c.time < until,
        )
        .limit(1)
    ).one_or_none()
    last = conn.execute(
        sa.select(audit_events.c.sequence, audit_events.c.action, audit_events.c.payload)
        .where(audit_events.c.subject == subject, audit_events.c.time < until, _STATE_ACTIONS)
        .order_by(audit_events.c.sequence.desc())
        .limit(1)
    ).one_or_none()
    return (
        None if created is None else (int(created.sequence), json.loads(created.payload)),
        None if last is None else (int(last.sequence), str(last.action), json.loads(last.payload)),
    )


def _release_record(row: Any, prompt_ids: Iterable[Any]) -> ReleaseRecord:
    return ReleaseRecord(
        id=row.id,
        slot_id=row.slot_id,
        slot=row.slot_name,
        digest=row.digest,
        document=json.loads(row.document),
        model_version_id=row.model_version_id,
        prompt_version_ids=tuple(int(i) for i in prompt_ids),
        params=json.loads(row.params),
        retrieval_index_id=row.retrieval_index_id,
        app_version=row.app_version,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _slot(row: Any) -> SlotRecord:
    document = None if row.policy_document is None else json.loads(row.policy_document)
    return SlotRecord(
        row.id, row.name, row.policy_name, document, int(row.routing_version), row.created_at, row.created_by
    )


def _period(row: Any) -> PeriodRecord:
    return PeriodRecord(
        row.id,
        row.slot_name,
        row.release_id,
        row.digest,
        row.kind,
        row.rollout_id,
        row.started_at,
        row.started_by,
        row.ended_at,
        int(row.audit_sequence),
    )

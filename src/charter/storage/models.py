"""Model registry tables: models, versions, aliases, evaluations, sign-offs, promotions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.domain.canonical import canonical_json
from charter.domain.modelspec import ModelSpec, parse_spec
from charter.domain.semver import Version
from charter.storage.schema import (
    alias_moves,
    dataset_versions,
    datasets,
    evaluations,
    model_aliases,
    model_reviewers,
    model_training_datasets,
    model_versions,
    models,
    promotions,
    signoffs,
)


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    primary_metrics: dict[str, str]
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class ModelVersionRecord:
    id: int
    model_id: int
    name: str
    version: Version
    spec: ModelSpec
    spec_digest: str
    description: str
    tags: tuple[str, ...]
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def subject(self) -> str:
        return f"model:{self.ref}"


@dataclass(frozen=True)
class AliasMoveRecord:
    id: int
    model: str
    alias: str
    from_version: str | None
    to_version: str | None
    kind: str  # promote | rollback
    reason: str
    at: datetime
    actor: str
    audit_sequence: int | None


@dataclass(frozen=True)
class EvaluationRecord:
    id: int
    model_version_id: int
    model: str  # "name@1.2.0"
    dataset_version_id: int
    dataset: str  # "name@4"
    dataset_role: str
    metrics: dict[str, float]
    exact_overlap: dict[str, dict[str, Any]]  # training dataset ref → overlap measurement
    note: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class SignoffRecord:
    id: int
    model_version_id: int
    note: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class PromotionRecord:
    id: int
    model_version_id: int
    report: dict[str, Any]
    rollback_plan: str
    rollback_to: str | None
    created_at: datetime
    created_by: str


_VERSIONS = sa.select(model_versions, models.c.name).join(models, models.c.id == model_versions.c.model_id)
_ORDER = (model_versions.c.major, model_versions.c.minor, model_versions.c.patch)
_FROM, _TO = model_versions.alias("v_from"), model_versions.alias("v_to")
_MOVES = (
    sa.select(
        alias_moves,
        models.c.name,
        _FROM.c.major.label("f_major"),
        _FROM.c.minor.label("f_minor"),
        _FROM.c.patch.label("f_patch"),
        _TO.c.major.label("t_major"),
        _TO.c.minor.label("t_minor"),
        _TO.c.patch.label("t_patch"),
    )
    .join(models, models.c.id == alias_moves.c.model_id)
    .outerjoin(_FROM, _FROM.c.id == alias_moves.c.from_version_id)
    .outerjoin(_TO, _TO.c.id == alias_moves.c.to_version_id)
)
_EVALUATIONS = (
    sa.select(
        evaluations,
        models.c.name.label("model_name"),
        model_versions.c.major,
        model_versions.c.minor,
        model_versions.c.patch,
        datasets.c.name.label("dataset_name"),
        dataset_versions.c.version.label("dataset_version"),
        dataset_versions.c.role.label("dataset_role"),
    )
    .join(model_versions, model_versions.c.id == evaluations.c.model_version_id)
    .join(models, models.c.id == model_versions.c.model_id)
    .join(dataset_versions, dataset_versions.c.id == evaluations.c.dataset_version_id)
    .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
)


# Statements on the read path are built once, with bind parameters, so a call only binds values.
_MODEL_BY_NAME = sa.select(models).where(models.c.name == sa.bindparam("name"))
_VERSION_BY_NUMBER = _VERSIONS.where(
    model_versions.c.model_id == sa.bindparam("model_id"),
    model_versions.c.major == sa.bindparam("major"),
    model_versions.c.minor == sa.bindparam("minor"),
    model_versions.c.patch == sa.bindparam("patch"),
)
_VERSION_BY_ID = _VERSIONS.where(model_versions.c.id == sa.bindparam("version_id"))
_HIGHEST = (
    _VERSIONS.where(model_versions.c.model_id == sa.bindparam("model_id"))
    .order_by(*[c.desc() for c in _ORDER])
    .limit(1)
)
_ALIASES = sa.select(model_aliases.c.alias, model_aliases.c.version_id).where(
    model_aliases.c.model_id == sa.bindparam("model_id")
)
_ALIAS_TARGET = sa.select(model_aliases.c.version_id).where(
    model_aliases.c.model_id == sa.bindparam("model_id"), model_aliases.c.alias == sa.bindparam("alias")
)

# Precompiled reads for `trace`: a version's evidence.
_EVALUATIONS_OF = _EVALUATIONS.where(evaluations.c.model_version_id == sa.bindparam("version_id")).order_by(
    evaluations.c.id
)
_SIGNOFFS_OF = (
    sa.select(signoffs)
    .where(signoffs.c.model_version_id == sa.bindparam("version_id"))
    .order_by(signoffs.c.id)
)
_PROMOTIONS_OF = (
    sa.select(promotions)
    .where(promotions.c.model_version_id == sa.bindparam("version_id"))
    .order_by(promotions.c.id)
)


class ModelRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- models -----------------------------------------------------------------------------

    def model(self, name: str) -> ModelRecord | None:
        row = self.conn.execute(_MODEL_BY_NAME, {"name": name}).one_or_none()
        return None if row is None else _model(row)

    def all_models(self) -> list[ModelRecord]:
        return [_model(row) for row in self.conn.execute(sa.select(models).order_by(models.c.name))]

    def create_model(
        self, name: str, primary_metrics: Mapping[str, str], *, at: datetime, by: str
    ) -> ModelRecord:
        self.conn.execute(
            sa.insert(models).values(
                name=name, primary_metrics=_json(primary_metrics), created_at=at, created_by=by
            )
        )
        found = self.model(name)
        assert found is not None
        return found

    def set_primary_metrics(self, model_id: int, primary_metrics: Mapping[str, str]) -> None:
        self.conn.execute(
            sa.update(models).where(models.c.id == model_id).values(primary_metrics=_json(primary_metrics))
        )

    # --- versions ---------------------------------------------------------------------------

    def versions(self, model_id: int) -> list[ModelVersionRecord]:
        rows = self.conn.execute(_VERSIONS.where(model_versions.c.model_id == model_id).order_by(*_ORDER))
        return [_version(row) for row in rows]

    def versions_page(self, model_id: int, *, offset: int, limit: int) -> list[ModelVersionRecord]:
        """One page of a model's versions, highest first."""
        order = [c.desc() for c in _ORDER]
        query = _VERSIONS.where(model_versions.c.model_id == model_id).order_by(*order)
        return [_version(row) for row in self.conn.execute(query.offset(offset).limit(limit))]

    def version(self, model_id: int, version: Version) -> ModelVersionRecord | None:
        values = {
            "model_id": model_id,
            "major": version.major,
            "minor": version.minor,
            "patch": version.patch,
        }
        row = self.conn.execute(_VERSION_BY_NUMBER, values).one_or_none()
        return None if row is None else _version(row)

    def highest(self, model_id: int) -> ModelVersionRecord | None:
        row = self.conn.execute(_HIGHEST, {"model_id": model_id}).one_or_none()
        return None if row is None else _version(row)

    def version_by_id(self, version_id: int) -> ModelVersionRecord:
        return _version(self.conn.execute(_VERSION_BY_ID, {"version_id": version_id}).one())

    def insert_version(
        self,
        model_id: int,
        version: Version,
        spec: ModelSpec,
        *,
        description: str,
        tags: Iterable[str],
        at: datetime,
        by: str,
    ) -> ModelVersionRecord:
        key = self.conn.execute(
            sa.insert(model_versions).values(
                model_id=model_id,
                major=version.major,
                minor=version.minor,
                patch=version.patch,
                spec=spec.canonical_json,
                spec_digest=spec.digest,
                description=description,
                tags=_json(list(tags)),
                created_at=at,
                created_by=by,
            )
        ).inserted_primary_key
        assert key is not None
        return self.version_by_id(int(key[0]))

    def link_training_datasets(self, version_id: int, dataset_version_ids: Iterable[int]) -> None:
        rows = [
            {"model_version_id": version_id, "dataset_version_id": i}
            for i in sorted(set(dataset_version_ids))
        ]
        if rows:
            self.conn.execute(sa.insert(model_training_datasets), rows)

    def training_dataset_ids(self, version_id: int) -> list[int]:
        query = (
            sa.select(model_training_datasets.c.dataset_version_id)
            .where(model_training_datasets.c.model_version_id == version_id)
            .order_by(model_training_datasets.c.dataset_version_id)
        )
        return [int(i) for i in self.conn.execute(query).scalars()]

    def weight_manifests(self) -> set[str]:
        """Blob-store manifest digests of every version's weights (roots for garbage collection)."""
        roots = set()
        for text in self.conn.execute(sa.select(model_versions.c.spec)).scalars():
            manifest = json.loads(text).get("weights", {}).get("manifest")
            if manifest:
                roots.add(str(manifest))
        return roots

    # --- aliases ----------------------------------------------------------------------------

    def aliases(self, model_id: int) -> dict[str, int]:
        """alias → version id."""
        rows = self.conn.execute(_ALIASES, {"model_id": model_id})
        return {str(alias): int(version_id) for alias, version_id in rows}

    def alias_target(self, model_id: int, alias: str) -> int | None:
        found = self.conn.execute(_ALIAS_TARGET, {"model_id": model_id, "alias": alias}).scalar()
        return None if found is None else int(found)

    def move_alias(
        self,
        model_id: int,
        alias: str,
        to_version_id: int,
        *,
        kind: str,
        reason: str,
        at: datetime,
        by: str,
        audit_sequence: int | None,
    ) -> None:
        """Point `alias` at a version and record the move (with the version it left)."""
        before = self.alias_target(model_id, alias)
        if before is None:
            self.conn.execute(
                sa.insert(model_aliases).values(model_id=model_id, alias=alias, version_id=to_version_id)
            )
        else:
            self.conn.execute(
                sa.update(model_aliases)
                .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
                .values(version_id=to_version_id)
            )
        self.conn.execute(
            sa.insert(alias_moves).values(
                model_id=model_id,
                alias=alias,
                from_version_id=before,
                to_version_id=to_version_id,
                kind=kind,
                reason=reason,
                at=at,
                actor=by,
                audit_sequence=audit_sequence,
            )
        )

    def alias_moves(self, model_id: int, alias: str | None = None) -> list[AliasMoveRecord]:
        query = _MOVES.where(alias_moves.c.model_id == model_id)
        if alias is not None:
            query = query.where(alias_moves.c.alias == alias)
        return [_move(row) for row in self.conn.execute(query.order_by(alias_moves.c.id))]

    # --- reviewers --------------------------------------------------------------------------

    def reviewers(self, model_id: int) -> tuple[str, ...]:
        query = (
            sa.select(model_reviewers.c.user_name)
            .where(model_reviewers.c.model_id == model_id)
            .order_by(model_reviewers.c.user_name)
        )
        return tuple(str(name) for name in self.conn.execute(query).scalars())

    def set_reviewers(self, model_id: int, names: Iterable[str]) -> None:
        self.conn.execute(sa.delete(model_reviewers).where(model_reviewers.c.model_id == model_id))
        rows = [{"model_id": model_id, "user_name": name} for name in sorted(set(names))]
        if rows:
            self.conn.execute(sa.insert(model_reviewers), rows)

    # --- evaluations ------------------------------------------------------------------------

    def add_evaluation(
        self,
        version_id: int,
        dataset_version_id: int,
        metrics: Mapping[str, float],
        overlap: Mapping[str, Any],
        *,
        note: str,
        at: datetime,
        by: str,
    ) -> EvaluationRecord:
        key = self.conn.execute(
            sa.insert(evaluations).values(
                model_version_id=version_id,
                dataset_version_id=dataset_version_id,
                metrics=_json(metrics),
                overlap=_json(overlap),
                note=note,
                created_at=at,
                created_by=by,
            )
        ).inserted_primary_key
        assert key is not None
        return _evaluation(self.conn.execute(_EVALUATIONS.where(evaluations.c.id == int(key[0]))).one())

    def evaluations(
        self, version_id: int, *, dataset_version_id: int | None = None
    ) -> list[EvaluationRecord]:
        """A version's evaluations, oldest first (optionally on one dataset version)."""
        query = _EVALUATIONS.where(evaluations.c.model_version_id == version_id)
        if dataset_version_id is not None:
            query = query.where(evaluations.c.dataset_version_id == dataset_version_id)
        return [_evaluation(row) for row in self.conn.execute(query.order_by(evaluations.c.id))]

    def latest_evaluation(
        self, version_id: int, *, dataset_version_id: int | None = None, roles: Iterable[str] = ()
    ) -> EvaluationRecord | None:
        query = _EVALUATIONS.where(evaluations.c.model_version_id == version_id)
        if dataset_version_id is not None:
            query = query.where(evaluations.c.dataset_version_id == dataset_version_id)
        roles = tuple(roles)
        if roles:
            query = query.where(dataset_versions.c.role.in_(roles))
        row = self.conn.execute(query.order_by(evaluations.c.id.desc()).limit(1)).one_or_none()
        return None if row is None else _evaluation(row)

    # --- sign-offs and promotions -----------------------------------------------------------

    def add_signoff(self, version_id: int, *, note: str, at: datetime, by: str) -> SignoffRecord:
        key = self.conn.execute(
            sa.insert(signoffs).values(model_version_id=version_id, note=note, created_at=at, created_by=by)
        ).inserted_primary_key
        assert key is not None
        return SignoffRecord(int(key[0]), version_id, note, at, by)

    def signoffs(self, version_id: int) -> list[SignoffRecord]:
        query = sa.select(signoffs).where(signoffs.c.model_version_id == version_id).order_by(signoffs.c.id)
        return [
            SignoffRecord(r.id, r.model_version_id, r.note, r.created_at, r.created_by)
            for r in self.conn.execute(query)
        ]

    def add_promotion(
        self,
        version_id: int,
        report: Mapping[str, Any],
        *,
        rollback_plan: str,
        rollback_to_id: int | None,
        at: datetime,
        by: str,
    ) -> None:
        self.conn.execute(
            sa.insert(promotions).values(
                model_version_id=version_id,
                report=_json(report),
                rollback_plan=rollback_plan,
                rollback_to_id=rollback_to_id,
                created_at=at,
                created_by=by,
            )
        )

    def promotions(self, version_id: int) -> list[PromotionRecord]:
        query = (
            sa.select(promotions).where(promotions.c.model_version_id == version_id).order_by(promotions.c.id)
        )
        return [self._promotion(row) for row in self.conn.execute(query)]

    def evidence(
        self, version_id: int
    ) -> tuple[list[EvaluationRecord], list[SignoffRecord], list[PromotionRecord]]:
        """`evaluations`, `signoffs` and `promotions` of a version, in three precompiled statements."""
        params = {"version_id": version_id}
        return (
            [_evaluation(row) for row in self.conn.execute(_EVALUATIONS_OF, params)],
            [
                SignoffRecord(r.id, r.model_version_id, r.note, r.created_at, r.created_by)
                for r in self.conn.execute(_SIGNOFFS_OF, params)
            ],
            [self._promotion(row) for row in self.conn.execute(_PROMOTIONS_OF, params)],
        )

    def _promotion(self, row: Any) -> PromotionRecord:
        target = None if row.rollback_to_id is None else self.version_by_id(row.rollback_to_id).ref
        return promotion_record(row, target)


def promotion_record(row: Any, target: str | None) -> PromotionRecord:
    """A `promotions` row as its record; `target`: the rollback target's ref, resolved by the caller."""
    return PromotionRecord(
        row.id,
        row.model_version_id,
        json.loads(row.report),
        row.rollback_plan,
        target,
        row.created_at,
        row.created_by,
    )


def _json(value: Any) -> str:
    return canonical_json(value).decode()


def _model(row: Any) -> ModelRecord:
    return ModelRecord(row.id, row.name, json.loads(row.primary_metrics), row.created_at, row.created_by)


def _version(row: Any) -> ModelVersionRecord:
    spec, _ = parse_spec(json.loads(row.spec))
    return ModelVersionRecord(
        id=row.id,
        model_id=row.model_id,
        name=row.name,
        version=Version(row.major, row.minor, row.patch),
        spec=spec,
        spec_digest=row.spec_digest,
        description=row.description,
        tags=tuple(json.loads(row.tags)),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _version_text(major: int | None, minor: int | None, patch: int | None) -> str | None:
    return None if major is None else f"{major}.{minor}.{patch}"


def _move(row: Any) -> AliasMoveRecord:
    return AliasMoveRecord(
        id=row.id,
        model=row.name,
        alias=row.alias,
        from_version=_version_text(row.f_major, row.f_minor, row.f_patch),
        to_version=_version_text(row.t_major, row.t_minor, row.t_patch),
        kind=row.kind,
        reason=row.reason,
        at=row.at,
        actor=row.actor,
        audit_sequence=row.audit_sequence,
    )


def _evaluation(row: Any) -> EvaluationRecord:
    return EvaluationRecord(
        id=row.id,
        model_version_id=row.model_version_id,
        model=f"{row.model_name}@{row.major}.{row.minor}.{row.patch}",
        dataset_version_id=row.dataset_version_id,
        dataset=f"{row.dataset_name}@{row.dataset_version}",
        dataset_role=row.dataset_role,
        metrics=json.loads(row.metrics),
        exact_overlap=json.loads(row.overlap),
        note=row.note,
        created_at=row.created_at,
        created_by=row.created_by,
    )

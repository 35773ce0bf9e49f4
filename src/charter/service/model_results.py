"""Results of the model registry's use cases: frozen dataclasses whose `as_dict()` is what `--json`
prints and what the REST API returns (stable keys)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from charter.domain import promotion as gate
from charter.domain.modelspec import Change, FieldChange, ModelSpec
from charter.domain.semver import Version

T = TypeVar("T")


def jsonable(value: Any) -> Any:
    """Plain JSON values: results by their `as_dict()`, times in ISO 8601, versions as text."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Version):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def as_fields(result: Any) -> dict[str, Any]:
    """A dataclass's fields, in declaration order, as JSON values."""
    return {f.name: jsonable(getattr(result, f.name)) for f in fields(result)}


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: Version
    spec: ModelSpec
    spec_digest: str
    description: str
    tags: tuple[str, ...]
    aliases: tuple[str, ...]  # aliases naming this version when it was read
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, **as_fields(self)}


@dataclass(frozen=True)
class Model:
    name: str
    primary_metrics: Mapping[str, str]
    reviewers: tuple[str, ...]
    aliases: Mapping[str, str]  # alias → version
    versions: tuple[str, ...]  # ascending
    created_at: datetime
    created_by: str

    @property
    def latest(self) -> str | None:
        return self.versions[-1] if self.versions else None

    def as_dict(self) -> dict[str, Any]:
        return {**as_fields(self), "latest": self.latest}


@dataclass(frozen=True)
class Evaluation:
    id: int
    model: str
    dataset: str
    dataset_role: str
    metrics: Mapping[str, float]
    exact_overlap: Mapping[str, Mapping[str, Any]]  # training dataset → exact row overlap
    note: str
    created_at: datetime
    created_by: str

    def facts(self) -> gate.EvaluationFacts:
        return gate.EvaluationFacts(
            self.id,
            self.model,
            self.dataset,
            self.dataset_role,
            self.metrics,
            self.exact_overlap,
            self.created_at.isoformat(),
            self.created_by,
        )

    def as_dict(self) -> dict[str, Any]:
        return {**as_fields(self), "near_duplicates": gate.near_duplicate_evidence(self.facts())}


@dataclass(frozen=True)
class Signoff:
    model: str
    by: str
    at: datetime
    note: str

    def as_dict(self) -> dict[str, Any]:
        return as_fields(self)


@dataclass(frozen=True)
class AliasMove:
    model: str
    alias: str
    from_version: str | None
    to_version: str | None
    kind: str  # promote | rollback
    reason: str
    at: datetime
    actor: str
    audit_sequence: int | None

    def as_dict(self) -> dict[str, Any]:
        return as_fields(self)


@dataclass(frozen=True)
class SpecDiff:
    a: str
    b: str
    change: Change | None  # None: identical specs
    metadata: tuple[FieldChange, ...]  # description and tags (outside the digest)

    def as_dict(self) -> dict[str, Any]:
        change = self.change
        return {
            "a": self.a,
            "b": self.b,
            "identical_spec": change is None,
            "required_bump": None if change is None else change.bump.word,
            "reason": None if change is None else change.reason,
            "changes": [] if change is None else jsonable(change.fields),
            "metadata": jsonable(self.metadata),
        }


@dataclass(frozen=True)
class VersionDetails:
    version: ModelVersion
    primary_metrics: Mapping[str, str]
    evaluations: tuple[Evaluation, ...]
    signoffs: tuple[Signoff, ...]
    promotions: tuple[Mapping[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {**self.version.as_dict(), **as_fields(self), "version": str(self.version.version)}


def view(cls: type[T], record: Any) -> T:
    """A result built from the record fields of the same names."""
    return cls(**{f.name: getattr(record, f.name) for f in fields(cls)})  # type: ignore[arg-type]

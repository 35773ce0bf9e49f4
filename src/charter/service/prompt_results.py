"""What the prompt library's use cases return. `as_dict()` is what `--json` prints and the REST
API returns; its keys are stable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.service.prompt_version import PromptVersion

if TYPE_CHECKING:  # the results do not import storage: the remote client decodes into them
    from charter.storage.prompts import EnvMoveRecord, ValidationRecord


@dataclass(frozen=True)
class SyncItem:
    name: str
    status: str  # added | changed | reverted | unchanged
    ref: str  # the prompt's latest version after the sync
    previous: str | None  # its latest version before
    path: str
    metadata_changed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SyncReport:
    folder: str
    git_commit: str | None
    items: tuple[SyncItem, ...]
    missing: tuple[str, ...]  # registered prompts with no file in the folder (kept, never deleted)

    def names(self, status: str) -> list[str]:
        return [i.name for i in self.items if i.status == status]

    @property
    def changed_anything(self) -> bool:
        return any(i.status != "unchanged" or i.metadata_changed for i in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "git_commit": self.git_commit,
            "added": self.names("added"),
            "changed": self.names("changed"),
            "reverted": self.names("reverted"),
            "unchanged": self.names("unchanged"),
            "metadata_changed": [i.name for i in self.items if i.metadata_changed],
            "missing": list(self.missing),
            "items": [i.as_dict() for i in self.items],
        }


@dataclass(frozen=True)
class ExportReport:
    folder: str
    environment: str | None
    written: tuple[str, ...]
    unchanged: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "environment": self.environment,
            "written": list(self.written),
            "unchanged": list(self.unchanged),
        }


ERROR, WARNING = "error", "warning"  # the severities of a finding of `charter prompt check`


@dataclass(frozen=True)
class Finding:
    file: str
    prompt: str | None
    severity: str  # error | warning
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CheckReport:
    folder: str
    files: int
    findings: tuple[Finding, ...]
    registry_checked: bool  # False: model registration was not checked (offline)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == WARNING)

    def ok(self, *, strict: bool = False) -> bool:
        return self.errors == 0 and (not strict or self.warnings == 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "files": self.files,
            "errors": self.errors,
            "warnings": self.warnings,
            "registry_checked": self.registry_checked,
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class Validation:
    ref: str
    sample: str
    runner: Mapping[str, Any]
    sample_size: int
    passed_count: int
    pass_rate: float
    min_pass_rate: float
    min_samples: int
    passed: bool
    failures: tuple[Mapping[str, Any], ...]
    duration_s: float
    created_at: datetime
    created_by: str
    audit_sequence: int | None

    @classmethod
    def of(cls, r: ValidationRecord) -> Validation:
        return cls(
            r.ref,
            r.sample,
            r.runner,
            r.sample_size,
            r.passed_count,
            r.pass_rate,
            r.min_pass_rate,
            r.min_samples,
            r.passed,
            tuple(r.failures),
            r.duration_s,
            r.created_at,
            r.created_by,
            r.audit_sequence,
        )

    def summary(self) -> dict[str, Any]:
        """Without the failed rows."""
        return {
            "ref": self.ref,
            "sample": self.sample,
            "runner": dict(self.runner),
            "sample_size": self.sample_size,
            "passed_count": self.passed_count,
            "pass_rate": self.pass_rate,
            "min_pass_rate": self.min_pass_rate,
            "min_samples": self.min_samples,
            "passed": self.passed,
            "failure_count": self.sample_size - self.passed_count,
            "duration_s": round(self.duration_s, 3),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "audit_sequence": self.audit_sequence,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "failures": [dict(f) for f in self.failures]}


@dataclass(frozen=True)
class EnvMove:
    name: str
    environment: str
    from_ref: str | None
    to_ref: str
    kind: str  # promote | rollback
    reason: str
    at: datetime
    actor: str
    audit_sequence: int | None

    @classmethod
    def of(cls, r: EnvMoveRecord) -> EnvMove:
        return cls(
            r.name,
            r.environment,
            None if r.from_version is None else f"{r.name}-v{r.from_version}",
            f"{r.name}-v{r.to_version}",
            r.kind,
            r.reason,
            r.at,
            r.actor,
            r.audit_sequence,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "environment": self.environment,
            "from": self.from_ref,
            "to": self.to_ref,
            "kind": self.kind,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "audit_sequence": self.audit_sequence,
        }


@dataclass(frozen=True)
class MoveResult:
    """A promotion or rollback: the move made (None when the environment held the version already)."""

    ref: str
    environment: str
    move: EnvMove | None
    validation: Validation | None = None  # the evidence a production promotion relied on

    @property
    def moved(self) -> bool:
        return self.move is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "environment": self.environment,
            "moved": self.moved,
            "move": None if self.move is None else self.move.as_dict(),
            "validation": None if self.validation is None else self.validation.summary(),
        }


@dataclass(frozen=True)
class PromptSummary:
    name: str
    latest: str | None
    versions: int
    environments: Mapping[str, str | None]  # every environment, in order → the ref it holds, or None
    description: str
    tags: tuple[str, ...]
    updated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latest": self.latest,
            "versions": self.versions,
            "environments": dict(self.environments),
            "description": self.description,
            "tags": list(self.tags),
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class VersionEntry:
    """A row of `charter prompt versions`."""

    version: PromptVersion
    latest: bool
    environments: tuple[str, ...]  # environments holding it now
    validation: Validation | None  # the latest validation

    def as_dict(self) -> dict[str, Any]:
        v = self.version
        return {
            "ref": v.ref,
            "version": v.version,
            "content_hash": v.content_hash,
            "model": v.model,
            "latest": self.latest,
            "environments": list(self.environments),
            "validation": None if self.validation is None else self.validation.summary(),
            "source": dict(v.source),
            "created_at": None if v.created_at is None else v.created_at.isoformat(),
            "created_by": v.created_by,
        }


@dataclass(frozen=True)
class PromptDetails:
    """`charter prompt show`: a version with where it is and the evidence about it."""

    version: PromptVersion
    at: datetime | None
    environments: tuple[str, ...]  # environments holding it now
    validations: tuple[Validation, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.version.as_dict(),
            "at": None if self.at is None else self.at.isoformat(),
            "environments": list(self.environments),
            "validations": [v.summary() for v in self.validations],
        }


@dataclass(frozen=True)
class PromptDiff:
    a: str
    b: str
    identical: bool
    text: tuple[str, ...]  # unified diff of the template / messages
    variables: Mapping[str, Any]  # added, removed, changed
    model: Mapping[str, Any]  # a, b, changed
    params: Mapping[str, Any]  # added, removed, changed
    tests: Mapping[str, Any]  # added, removed
    validations: Mapping[str, Any]  # a, b: latest validation summary or None
    production_metrics: Mapping[str, Any] = field(default_factory=dict)  # a, b: see prompt_metrics

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "identical": self.identical,
            "text": list(self.text),
            "variables": dict(self.variables),
            "model": dict(self.model),
            "params": dict(self.params),
            "tests": dict(self.tests),
            "validations": dict(self.validations),
            "production_metrics": dict(self.production_metrics),
        }

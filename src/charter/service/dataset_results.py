"""What the dataset registry's use cases return: versions, add results, exact overlap, diffs,
checkout and gc reports, profiles (see `charter.service.datasets`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from charter.storage.blobs import BlobStore
from charter.storage.datasets import DatasetVersionRecord


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    digest: str
    kind: str
    role: str
    sources: tuple[str, ...]
    derived_from: str | None
    message: str
    files: int
    bytes_total: int
    bytes_new: int
    schema: list[dict[str, Any]] | None
    row_count: int | None
    has_fingerprints: bool
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def of(cls, r: DatasetVersionRecord) -> DatasetVersion:
        return cls(
            r.name,
            r.version,
            r.digest,
            r.kind,
            r.role,
            r.sources,
            r.derived_from,
            r.message,
            r.file_count,
            r.bytes_total,
            r.bytes_new,
            r.schema,
            r.row_count,
            r.fingerprints_digest is not None,
            r.created_at,
            r.created_by,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "kind": self.kind,
            "role": self.role,
            "sources": list(self.sources),
            "derived_from": self.derived_from,
            "message": self.message,
            "files": self.files,
            "bytes_total": self.bytes_total,
            "bytes_new": self.bytes_new,
            "schema": self.schema,
            "row_count": self.row_count,
            "has_fingerprints": self.has_fingerprints,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class AddResult:
    version: DatasetVersion
    created: bool  # False: the content equals the latest version's, nothing new was recorded
    bytes_read: int
    bytes_new: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.as_dict(),
            "created": self.created,
            "bytes_read": self.bytes_read,
            "bytes_new": self.bytes_new,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ExactOverlap:
    """Rows (or files) of A that also occur in B, counted with A's multiplicity."""

    a: str
    b: str
    method: str  # "rows": canonical row fingerprints; "files": whole-file digests
    a_total: int
    overlapping: int

    @property
    def ratio(self) -> float:
        return self.overlapping / self.a_total if self.a_total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "method": self.method,
            "a_total": self.a_total,
            "overlapping": self.overlapping,
            "ratio": self.ratio,
        }


@dataclass(frozen=True)
class DatasetDiff:
    a: str
    b: str
    added: list[str]
    removed: list[str]
    changed: list[str]
    unchanged: int
    bytes_delta: int
    rows_delta: int | None
    schema_changes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "bytes_delta": self.bytes_delta,
            "rows_delta": self.rows_delta,
            "schema_changes": self.schema_changes,
        }


@dataclass(frozen=True)
class CheckoutReport:
    ref: str
    target: str
    files: int
    bytes_written: int
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class GcReport:
    dry_run: bool
    reachable: int
    removed: int
    bytes_removed: int
    kept_recent: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def overlap_between(blobs: BlobStore, a: DatasetVersionRecord, b: DatasetVersionRecord) -> ExactOverlap:
    """Exact overlap of A with B: by row fingerprints when both are tables, else by file digests."""
    from charter.data import fingerprints, overlap
    from charter.data.snapshot import load_manifest

    if a.fingerprints_digest and b.fingerprints_digest:
        fa = fingerprints.from_bytes(blobs.get(a.fingerprints_digest))
        fb = fingerprints.from_bytes(blobs.get(b.fingerprints_digest))
        return ExactOverlap(a.ref, b.ref, "rows", int(fa.size), overlap.rows_found(fa, fb))
    found, total = overlap.files_found(
        load_manifest(blobs, a.manifest_digest), load_manifest(blobs, b.manifest_digest)
    )
    return ExactOverlap(a.ref, b.ref, "files", total, found)


@dataclass(frozen=True)
class DatasetProfile:
    ref: str
    rows: int
    profile: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "rows": self.rows, **self.profile}

"""Dataset registry tables: datasets and their immutable versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.domain.refs import DatasetRef
from charter.errors import NotFound
from charter.storage.schema import dataset_versions, datasets


@dataclass(frozen=True)
class DatasetVersionRecord:
    id: int
    dataset_id: int
    name: str
    version: int
    digest: str
    manifest_digest: str
    kind: str  # files | table
    role: str  # train | eval | holdout | production-sample
    sources: tuple[str, ...]
    derived_from: str | None  # "name@N"
    message: str
    file_count: int
    bytes_total: int
    bytes_new: int
    schema: list[dict[str, Any]] | None
    row_count: int | None
    fingerprints_digest: str | None
    profile: dict[str, Any] | None
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def subject(self) -> str:
        return f"dataset:{self.ref}"


_SELECT = sa.select(dataset_versions, datasets.c.name).join(
    datasets, datasets.c.id == dataset_versions.c.dataset_id
)


class DatasetRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- datasets ---------------------------------------------------------------------------

    def dataset_id(self, name: str) -> int | None:
        found = self.conn.execute(sa.select(datasets.c.id).where(datasets.c.name == name)).scalar()
        return None if found is None else int(found)

    def create_dataset(self, name: str, *, at: datetime, by: str) -> int:
        key = self.conn.execute(
            sa.insert(datasets).values(name=name, created_at=at, created_by=by)
        ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def names(self) -> list[str]:
        return list(self.conn.execute(sa.select(datasets.c.name).order_by(datasets.c.name)).scalars())

    # --- versions ---------------------------------------------------------------------------

    def get_version(self, ref: DatasetRef, *, as_of: datetime | None = None) -> DatasetVersionRecord:
        """A version by number; without one, the latest (as of a time, if given)."""
        query = _SELECT.where(datasets.c.name == ref.name)
        if ref.version is not None:
            query = query.where(dataset_versions.c.version == ref.version)
        if as_of is not None:
            query = query.where(dataset_versions.c.created_at <= as_of)
        row = self.conn.execute(query.order_by(dataset_versions.c.version.desc()).limit(1)).one_or_none()
        if row is None:
            if self.dataset_id(ref.name) is None:
                raise NotFound(f"dataset {ref.name!r}", "list datasets with `charter dataset list`")
            when = f" as of {as_of.isoformat()}" if as_of is not None else ""
            raise NotFound(
                f"dataset version {ref}{when}", f"list versions with `charter dataset versions {ref.name}`"
            )
        return self._record(row)

    def by_id(self, version_id: int) -> DatasetVersionRecord:
        row = self.conn.execute(_SELECT.where(dataset_versions.c.id == version_id)).one()
        return self._record(row)

    def versions(self, name: str) -> list[DatasetVersionRecord]:
        rows = self.conn.execute(_SELECT.where(datasets.c.name == name).order_by(dataset_versions.c.version))
        return [self._record(row) for row in rows]

    def versions_page(self, dataset_id: int, *, offset: int, limit: int) -> list[DatasetVersionRecord]:
        """One page of a dataset's versions, newest first."""
        query = _SELECT.where(dataset_versions.c.dataset_id == dataset_id).order_by(
            dataset_versions.c.version.desc()
        )
        return [self._record(row) for row in self.conn.execute(query.offset(offset).limit(limit))]

    def latest_versions(self) -> list[DatasetVersionRecord]:
        newest = (
            sa.select(dataset_versions.c.dataset_id, sa.func.max(dataset_versions.c.version).label("v"))
            .group_by(dataset_versions.c.dataset_id)
            .subquery()
        )
        query = _SELECT.join(
            newest,
            sa.and_(
                newest.c.dataset_id == dataset_versions.c.dataset_id, newest.c.v == dataset_versions.c.version
            ),
        ).order_by(datasets.c.name)
        return [self._record(row) for row in self.conn.execute(query)]

    def all_versions(self) -> list[DatasetVersionRecord]:
        return [self._record(row) for row in self.conn.execute(_SELECT.order_by(dataset_versions.c.id))]

    def insert_version(self, values: dict[str, Any]) -> DatasetVersionRecord:
        latest = self.conn.execute(
            sa.select(sa.func.max(dataset_versions.c.version)).where(
                dataset_versions.c.dataset_id == values["dataset_id"]
            )
        ).scalar()
        values = {**values, "version": int(latest or 0) + 1}
        key = self.conn.execute(sa.insert(dataset_versions).values(**values)).inserted_primary_key
        assert key is not None
        return self.by_id(int(key[0]))

    def blob_roots(self) -> tuple[set[str], set[str]]:
        """Blobs the versions hold directly: (manifests, other blobs such as row fingerprints)."""
        rows = self.conn.execute(
            sa.select(dataset_versions.c.manifest_digest, dataset_versions.c.fingerprints_digest)
        )
        manifests: set[str] = set()
        others: set[str] = set()
        for manifest, fingerprints in rows:
            manifests.add(manifest)
            if fingerprints:
                others.add(fingerprints)
        return manifests, others

    def _record(self, row: Any) -> DatasetVersionRecord:
        derived = None
        if row.derived_from_id is not None:
            parent = self.conn.execute(
                sa.select(datasets.c.name, dataset_versions.c.version)
                .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                .where(dataset_versions.c.id == row.derived_from_id)
            ).one()
            derived = f"{parent.name}@{parent.version}"
        return DatasetVersionRecord(
            id=row.id,
            dataset_id=row.dataset_id,
            name=row.name,
            version=row.version,
            digest=row.digest,
            manifest_digest=row.manifest_digest,
            kind=row.kind,
            role=row.role,
            sources=tuple(json.loads(row.sources)),
            derived_from=derived,
            message=row.message,
            file_count=row.file_count,
            bytes_total=row.bytes_total,
            bytes_new=row.bytes_new,
            schema=None if row.schema is None else json.loads(row.schema),
            row_count=row.row_count,
            fingerprints_digest=row.fingerprints_digest,
            profile=None if row.profile is None else json.loads(row.profile),
            created_at=row.created_at,
            created_by=row.created_by,
        )

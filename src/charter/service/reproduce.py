"""Reproducible training data: materialise a model version's training datasets at their exact
snapshots, verified byte for byte, with a manifest naming the model spec and every digest.

Three steps, so that a remote client can run the file-writing ones on its side: `prepare_target`
(refuse a non-empty folder), `training_plan` (what to write: read from the store, authorised) and
`materialise` (checkout of every dataset from a blob source, then the manifest file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.domain.refs import parse_model_ref
from charter.domain.roles import Action
from charter.errors import InvalidInput
from charter.service.access import authorize

if TYPE_CHECKING:
    from charter.data.manifest import Manifest
    from charter.service.registry import Registry
    from charter.storage.blobs import BlobStore

MANIFEST = "charter-training.json"


@dataclass(frozen=True)
class Reproduction:
    model: str
    target: str
    manifest: str
    datasets: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "target": self.target,
            "manifest": self.manifest,
            "datasets": list(self.datasets),
        }


@dataclass(frozen=True)
class TrainingDataset:
    ref: str
    role: str
    digest: str
    manifest: Manifest
    row_count: int | None
    fingerprints_digest: str | None
    kind: str = "files"  # files | table | iceberg | delta (a lake table is read at its snapshot)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "role": self.role,
            "digest": self.digest,
            "manifest": json.loads(self.manifest.to_bytes()),
            "row_count": self.row_count,
            "fingerprints_digest": self.fingerprints_digest,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingDataset:
        from charter.data.reassemble import manifest_from_json

        return cls(
            str(data["ref"]),
            str(data["role"]),
            str(data["digest"]),
            manifest_from_json(data["manifest"]),
            data.get("row_count"),
            data.get("fingerprints_digest"),
            str(data.get("kind", "files")),
        )


@dataclass(frozen=True)
class TrainingPlan:
    """What reproducing a model version writes: its identity and spec, and its training datasets."""

    model: str
    spec_digest: str
    spec: dict[str, Any]
    datasets: tuple[TrainingDataset, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "spec_digest": self.spec_digest,
            "spec": self.spec,
            "datasets": [d.as_dict() for d in self.datasets],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingPlan:
        return cls(
            str(data["model"]),
            str(data["spec_digest"]),
            dict(data["spec"]),
            tuple(TrainingDataset.from_dict(d) for d in data["datasets"]),
        )


def reproduce(registry: Registry, ref: str, folder: str | Path, *, force: bool = False) -> Reproduction:
    """Write every training dataset of `ref` to FOLDER/<dataset>@<N>/ (checkout verifies each file's
    digests) and FOLDER/charter-training.json: the model version, its spec and digest, and per
    dataset the manifest digest, files, bytes, rows and row-fingerprint digest."""
    target = prepare_target(folder, force=force)
    return materialise(training_plan(registry, ref), registry.store.blobs, target, force=force)


def prepare_target(folder: str | Path, *, force: bool) -> Path:
    target = Path(folder)
    if target.exists() and any(target.iterdir()) and not force:
        raise InvalidInput(
            f"{target} is not empty; give an empty or new folder (or force=True / --force to overwrite)"
        )
    return target


def training_plan(registry: Registry, ref: str) -> TrainingPlan:
    """The model version `ref` and its training datasets with their manifests (read access)."""
    from charter.data.snapshot import load_manifest
    from charter.service.models import resolve_version, version_view

    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.READ)
        version = resolve_version(tx, parse_model_ref(ref))
        model = version_view(tx, version).as_dict()
        training = [tx.datasets.by_id(i) for i in tx.models.training_dataset_ids(version.id)]
    blobs = registry.store.blobs
    datasets = tuple(
        TrainingDataset(
            r.ref,
            r.role,
            r.digest,
            load_manifest(blobs, r.manifest_digest),
            r.row_count,
            r.fingerprints_digest,
            r.kind,
        )
        for r in training
    )
    return TrainingPlan(model["ref"], model["spec_digest"], model["spec"], datasets)


def materialise(plan: TrainingPlan, blobs: BlobStore, target: Path, *, force: bool) -> Reproduction:
    """Check out every dataset of `plan` from `blobs` under `target`, then write the manifest file.
    A lake-table dataset is read from its table at the pinned snapshot (see `_materialise_table`)."""
    from charter.data.snapshot import checkout

    target.mkdir(parents=True, exist_ok=True)
    written = []
    for dataset in plan.datasets:
        manifest = dataset.manifest
        if dataset.kind in ("iceberg", "delta"):
            written.append(_materialise_table(dataset, blobs, target, force=force))
            continue
        result = checkout(blobs, manifest, target / dataset.ref, force=force)
        written.append(
            {
                "ref": dataset.ref,
                "role": dataset.role,
                "digest": dataset.digest,
                "manifest_digest": manifest.digest,
                "files": [{"path": f.path, "size": f.size, "digest": f.digest} for f in manifest.files],
                "bytes": manifest.total_bytes,
                "bytes_written": result.bytes_written,
                "row_count": dataset.row_count,
                "fingerprints_digest": dataset.fingerprints_digest,
                "folder": dataset.ref,
                "verified": True,
            }
        )
    document = {
        "model": plan.model,
        "spec_digest": plan.spec_digest,
        "spec": plan.spec,
        "datasets": written,
    }
    path = target / MANIFEST
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return Reproduction(plan.model, str(target.absolute()), str(path.absolute()), tuple(written))


def _materialise_table(
    dataset: TrainingDataset, blobs: BlobStore, target: Path, *, force: bool
) -> dict[str, Any]:
    """A lake-table dataset read at its pinned snapshot into <target>/<ref>/table.parquet, verified
    by row count and row-fingerprint digest (an expired snapshot is an error naming it)."""
    from charter.service.dataset_lake import checkout_table, load_reference

    reference = load_reference(blobs, dataset.manifest)
    report = checkout_table(dataset.ref, reference, target / dataset.ref, force=force)
    return {
        "ref": dataset.ref,
        "role": dataset.role,
        "digest": dataset.digest,
        "manifest_digest": dataset.manifest.digest,
        "kind": dataset.kind,
        "table": {"kind": reference.ref.kind, **reference.ref.identity()},
        "snapshot": reference.snapshot,
        "files": [{"path": "table.parquet", "size": report.bytes_written}],
        "bytes": report.bytes_written,
        "bytes_written": report.bytes_written,
        "row_count": reference.rows,
        "fingerprints_digest": reference.fingerprints,
        "folder": dataset.ref,
        "verified": True,
    }

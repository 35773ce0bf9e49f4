"""Reproducible training data: materialise a model version's training datasets at their exact
snapshots, verified byte for byte, with a manifest naming the model spec and every digest."""

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
    from charter.service.registry import Registry

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


def reproduce(registry: Registry, ref: str, folder: str | Path, *, force: bool = False) -> Reproduction:
    """Write every training dataset of `ref` to FOLDER/<dataset>@<N>/ (checkout verifies each file's
    digests) and FOLDER/charter-training.json: the model version, its spec and digest, and per
    dataset the manifest digest, files, bytes, rows and row-fingerprint digest."""
    from charter.data.snapshot import checkout, load_manifest
    from charter.service.models import resolve_version, version_view

    target = Path(folder)
    if target.exists() and any(target.iterdir()) and not force:
        raise InvalidInput(
            f"{target} is not empty; give an empty or new folder (or force=True / --force to overwrite)"
        )
    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.READ)
        version = resolve_version(tx, parse_model_ref(ref))
        model = version_view(tx, version).as_dict()
        training = [tx.datasets.by_id(i) for i in tx.models.training_dataset_ids(version.id)]
    target.mkdir(parents=True, exist_ok=True)
    blobs = registry.store.blobs
    written = []
    for record in training:
        manifest = load_manifest(blobs, record.manifest_digest)
        result = checkout(blobs, manifest, target / record.ref, force=force)
        written.append(
            {
                "ref": record.ref,
                "role": record.role,
                "digest": record.digest,
                "manifest_digest": record.manifest_digest,
                "files": [{"path": f.path, "size": f.size, "digest": f.digest} for f in manifest.files],
                "bytes": manifest.total_bytes,
                "bytes_written": result.bytes_written,
                "row_count": record.row_count,
                "fingerprints_digest": record.fingerprints_digest,
                "folder": record.ref,
                "verified": True,
            }
        )
    document = {
        "model": model["ref"],
        "spec_digest": model["spec_digest"],
        "spec": model["spec"],
        "datasets": written,
    }
    path = target / MANIFEST
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return Reproduction(model["ref"], str(target.absolute()), str(path.absolute()), tuple(written))

"""The model registry over real dataset snapshots and stored weights (needs `charter.data`).

Exact row overlap between an evaluation set and the training data is measured from the snapshots'
row fingerprints; weights given as a file path are stored in the blob store and kept by `gc`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from charter.errors import GateRefused, InvalidSpec
from charter.service.registry import Registry
from tests.conftest import add_user


def csv(path: Path, ids: range) -> Path:
    path.write_text("id,text,label\n" + "".join(f"{i},ticket {i},{i % 3}\n" for i in ids))
    return path


def hosted_spec(weights: str, training: list[str]) -> dict[str, object]:
    return {
        "family": "llama-3",
        "architecture": "decoder-only transformer",
        "parameter_count": "8B",
        "weights": weights,
        "training": {"datasets": training, "date": "2026-02-01", "base_model": "llama-3-8b"},
        "serving": {"temperature": 0.1},
        "primary_metrics": {"accuracy": "higher"},
    }


def test_weights_files_are_stored_content_addressed_and_kept_by_gc(
    registry: Registry, tmp_path: Path
) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x00weights" * 100_000)
    train = registry.datasets.add(
        "tickets", csv(tmp_path / "train.csv", range(100)), role="train"
    ).version.ref
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(hosted_spec("model.safetensors", [train])))  # relative to the spec
    v = registry.models.register("llama", spec_file)
    assert v.spec.weights is not None and v.spec.weights.digest.startswith("blake3:")
    assert v.spec.weights.size == weights.stat().st_size
    manifest = v.spec.weights.manifest
    assert manifest is not None and registry.store.blobs.has(manifest)
    with registry.store.read() as tx:
        assert manifest in tx.models.weight_manifests()
    registry.datasets.gc(grace_seconds=0)
    assert registry.store.blobs.has(manifest)
    with pytest.raises(InvalidSpec, match="does not exist"):
        registry.models.register("llama", hosted_spec(str(tmp_path / "missing.bin"), [train]))
    weights.write_bytes(b"\x01weights" * 100_000)
    assert registry.models.register("llama", spec_file).ref == "llama@1.1.0"  # new weights: a minor


def test_exact_overlap_with_training_data_is_measured_and_gates_promotion(
    registry: Registry, tmp_path: Path
) -> None:
    bob = add_user(registry, "bob", "reviewer")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"w" * 1000)
    train = registry.datasets.add(
        "tickets", csv(tmp_path / "train.csv", range(100)), role="train"
    ).version.ref
    clean = registry.datasets.add("golden", csv(tmp_path / "golden.csv", range(100, 150)), role="holdout")
    leaky = registry.datasets.add("golden", csv(tmp_path / "golden.csv", range(90, 140)), role="holdout")
    v = registry.models.register("llama", hosted_spec(str(weights), [train]))
    bob.models.signoff(v.ref)

    measured = registry.models.eval(v.ref, dataset=leaky.version.ref, metrics={"accuracy": 0.9})
    overlap = measured.exact_overlap[train]
    assert (overlap["overlapping"], overlap["a_total"], overlap["method"]) == (10, 50, "rows")
    with pytest.raises(GateRefused) as refused:
        registry.models.promote(v.ref, rollback_plan="serve the rules engine")
    check = refused.value.report["checks"][0]
    assert not check["passed"] and f"shares rows with training data: {train} (10 rows)" in check["detail"]

    registry.models.eval(v.ref, dataset=clean.version.ref, metrics={"accuracy": 0.88})
    report = registry.models.promote(v.ref, rollback_plan="serve the rules engine", eval=clean.version.ref)
    assert report.passed
    evidence = report.checks[0].evidence
    assert evidence["exact_overlap"][train]["overlapping"] == 0
    assert evidence["near_duplicates"]["measured"] is True  # text columns: MinHash/LSH
    assert evidence["near_duplicates"]["per_dataset"][train]["near_rows"] == 0
    assert registry.models.get("llama@production").ref == v.ref
    assert registry.audit.verify().ok

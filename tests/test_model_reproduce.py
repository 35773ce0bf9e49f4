"""Reproducible training data: a model version's training datasets, byte for byte, with a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charter.errors import InvalidInput, NotFound
from charter.service.registry import Registry
from tests.cli_runner import Cli
from tests.intel_fixtures import cli  # noqa: F401  (fixture)


def _spec(weights: str, training: list[str]) -> dict[str, object]:
    return {
        "family": "llama-3",
        "architecture": "decoder-only transformer",
        "parameter_count": "8B",
        "weights": weights,
        "training": {"datasets": training, "date": "2026-02-01", "base_model": "llama-3-8b"},
        "serving": {"temperature": 0.1},
        "primary_metrics": {"accuracy": "higher"},
    }


def _setup(registry: Registry, tmp_path: Path) -> tuple[str, bytes, bytes]:
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "train.csv").write_text("id,text\n" + "".join(f"{i},t{i}\n" for i in range(100)))
    first = (src / "train.csv").read_bytes()
    registry.datasets.add("tickets", src / "train.csv", role="train")
    (src / "train.csv").write_text("id,text\n" + "".join(f"{i},t{i}\n" for i in range(200)))  # version 2
    registry.datasets.add("tickets", src / "train.csv", role="train")
    (src / "docs" / "a.bin").write_bytes(bytes(range(256)) * 50)
    corpus = (src / "docs" / "a.bin").read_bytes()
    registry.datasets.add("corpus", src / "docs", role="train")
    (tmp_path / "w.bin").write_bytes(b"w" * 10)
    ref = registry.models.register("llama", _spec(str(tmp_path / "w.bin"), ["tickets@1", "corpus@1"])).ref
    return ref, first, corpus


def test_training_datasets_are_materialised_at_their_exact_versions(
    registry: Registry, tmp_path: Path
) -> None:
    ref, first, corpus = _setup(registry, tmp_path)
    out = tmp_path / "repro"
    result = registry.models.reproduce(ref, out)
    assert (out / "tickets@1" / "train.csv").read_bytes() == first  # version 1, not the latest
    assert (out / "corpus@1" / "a.bin").read_bytes() == corpus
    manifest = json.loads((out / "charter-training.json").read_text())
    assert manifest["model"] == ref and manifest["spec_digest"] and manifest["spec"]["family"] == "llama-3"
    assert {d["ref"] for d in manifest["datasets"]} == {"tickets@1", "corpus@1"}
    tickets = next(d for d in manifest["datasets"] if d["ref"] == "tickets@1")
    assert tickets["row_count"] == 100 and tickets["digest"] == registry.datasets.get("tickets@1").digest
    assert len(result.datasets) == 2 and all(d["verified"] for d in result.datasets)
    with pytest.raises(InvalidInput, match="not empty"):
        registry.models.reproduce(ref, out)
    registry.models.reproduce(ref, out, force=True)
    with pytest.raises(NotFound):
        registry.models.reproduce("llama@9.9.9", tmp_path / "other")


def test_cli_reproduce(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    import charter

    with charter.open(user="alice") as registry:
        ref, first, _ = _setup(registry, tmp_path)
    run = cli("model", "reproduce", ref, "out", "--json")
    assert run.code == 0 and len(run.json()["datasets"]) == 2
    assert (tmp_path / "out" / "tickets@1" / "train.csv").read_bytes() == first
    assert cli("model", "reproduce", ref, "out").code == 1
    assert cli("model", "reproduce", ref, "out", "--force").code == 0

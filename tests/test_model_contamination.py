"""Near-duplicate contamination at `model eval`, in the promotion gate, and its waiver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from charter.errors import GateRefused, InvalidInput, SeparationOfDuties
from charter.service.registry import Registry
from tests.cli_runner import Cli
from tests.conftest import add_user
from tests.intel_fixtures import cli  # noqa: F401  (fixture)

VOCAB = [f"w{i}" for i in range(2000)]


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(VOCAB, 16)) for _ in range(n)]


def _write(path: Path, ids: range, texts: list[str]) -> Path:
    pq.write_table(pa.table({"id": list(ids), "text": texts}), path)
    return path


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


def _setup(registry: Registry, tmp_path: Path) -> tuple[str, str]:
    """A model trained on 200 texts, and an eval set whose first 10 of 100 texts are training texts
    with the last word changed (near-duplicates, 10 % > the default 1 % limit), other ids."""
    train_texts = _texts(200, 1)
    train = registry.datasets.add(
        "tr", _write(tmp_path / "tr.parquet", range(200), train_texts), role="train"
    )
    eval_texts = _texts(100, 2)
    for k in range(10):
        eval_texts[k] = " ".join([*train_texts[k].split()[:-1], "edited"])
    ev = registry.datasets.add(
        "ev", _write(tmp_path / "ev.parquet", range(1000, 1100), eval_texts), role="eval"
    )
    (tmp_path / "w.bin").write_bytes(b"w" * 100)
    version = registry.models.register("llama", _spec(str(tmp_path / "w.bin"), [train.version.ref]))
    return version.ref, ev.version.ref


def test_near_duplicates_fail_the_gate_until_another_reviewer_waives(
    registry: Registry, tmp_path: Path
) -> None:
    bob = add_user(registry, "bob", "reviewer")
    carol = add_user(registry, "carol", "author", "reviewer")
    ref, ev = _setup(registry, tmp_path)
    bob.models.signoff(ref)
    evaluation = carol.models.eval(ref, dataset=ev, metrics={"accuracy": 0.9})
    near = evaluation.exact_overlap["tr@1"]["near_duplicates"]
    assert near["measured"] and near["near_rows"] == 10 and near["ratio"] == pytest.approx(0.1)
    assert evaluation.exact_overlap["tr@1"]["overlapping"] == 0
    assert evaluation.as_dict()["near_duplicates"]["per_dataset"]["tr@1"]["near_rows"] == 10
    with pytest.raises(GateRefused) as refused:
        registry.models.promote(ref, rollback_plan="serve the rules engine")
    check = refused.value.report["checks"][0]
    assert not check["passed"] and "near-duplicates of training data" in check["detail"]
    assert "tr@1 (10.00% > 1.00%)" in check["detail"]

    with pytest.raises(SeparationOfDuties):
        carol.models.waive(ref, reason="mine")
    with pytest.raises(InvalidInput, match="reason"):
        bob.models.waive(ref, reason="  ")
    waiver = bob.models.waive(ref, reason="the edited tickets are public FAQ entries")
    assert waiver.evaluation == evaluation.id and waiver.created_by == "bob"
    report = registry.models.promote(ref, rollback_plan="serve the rules engine")
    assert report.passed and "waived by bob" in report.checks[0].detail
    assert report.checks[0].evidence["near_duplicates"]["waiver"]["reason"].startswith("the edited")
    events = [e.action for e in registry.audit.log(subject="model:llama@1.0.0")]
    assert "model.contamination_waived" in events
    assert registry.audit.verify().ok


def test_a_clean_eval_set_passes_without_waiver(registry: Registry, tmp_path: Path) -> None:
    bob = add_user(registry, "bob", "reviewer")
    train = registry.datasets.add(
        "tr", _write(tmp_path / "tr.parquet", range(50), _texts(50, 1)), role="train"
    )
    ev = registry.datasets.add(
        "ev", _write(tmp_path / "ev.parquet", range(100, 150), _texts(50, 9)), role="eval"
    )
    (tmp_path / "w.bin").write_bytes(b"w" * 100)
    ref = registry.models.register("llama", _spec(str(tmp_path / "w.bin"), [train.version.ref])).ref
    bob.models.signoff(ref)
    registry.models.eval(ref, dataset=ev.version.ref, metrics={"accuracy": 0.9})
    assert registry.models.promote(ref, rollback_plan="serve the rules engine").passed


def test_cli_waive(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    import charter

    with charter.open(user="alice") as registry:
        ref, ev = _setup(registry, tmp_path)
        registry.models.eval(ref, dataset=ev, metrics={"accuracy": 0.9})
    assert cli("model", "waive", ref, "--reason", "ok", user="alice").code == 5  # her own evaluation
    run = cli("model", "waive", ref, "--reason", "public FAQ entries", "--json", user="bob")
    assert run.code == 0 and run.json()["created_by"] == "bob"
    assert cli("model", "waive", "999", "--reason", "x", user="bob").code == 3

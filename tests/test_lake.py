"""Lake tables by reference: real Iceberg (SQL catalog on SQLite, local warehouse) and Delta tables,
pinned at a snapshot, read back by time travel, verified by rows and row fingerprints."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from charter.data.lake import DOCUMENT, LakeExtraMissing, SnapshotGone
from charter.errors import InvalidInput, NotFound
from charter.service.registry import Registry
from tests.lake_tables import Iceberg, delta_table, expire, iceberg_table, row_set, rows, vacuum


def _checked_out(registry: Registry, ref: str, target: Path) -> set[tuple[object, ...]]:
    report = registry.datasets.checkout(ref, target)
    assert report.verified and report.files == 1
    return row_set(pq.read_table(target / "table.parquet"))


def _nothing_written(registry: Registry) -> tuple[int, int, int]:
    """(audit events, datasets, blobs): what a failed add must leave as it was."""
    blobs = sum(1 for _ in registry.store.blobs.digests())
    return len(registry.audit.log()), len(registry.datasets.list()), blobs


def test_iceberg_snapshots_are_pinned_and_read_back_by_time_travel(
    registry: Registry, tmp_path: Path
) -> None:
    ice = iceberg_table(tmp_path / "ice")
    first = registry.datasets.add_table("events", iceberg=ice.ref, snapshot=ice.first, role="train")
    current = registry.datasets.add_table("events", iceberg=ice.ref, role="train")
    v1, v2 = first.version, current.version
    assert (v1.kind, v1.row_count, v2.row_count) == ("iceberg", 300, 400)
    assert [c["name"] for c in v1.schema or []] == ["colour", "id", "score", "text"]
    assert v1.sources[0] == f"iceberg:{ice.ref}?snapshot={ice.first}"
    assert v2.sources[0] == f"iceberg:{ice.ref}?snapshot={ice.second}"  # the current one, pinned
    assert v1.digest != v2.digest and v1.has_fingerprints
    # the older snapshot's rows, although the table has moved on
    assert _checked_out(registry, "events@1", tmp_path / "one") == row_set(rows(0, 300))
    assert _checked_out(registry, "events@2", tmp_path / "two") == row_set(rows(0, 400))
    event = registry.audit.log(subject="dataset:events@1")[-1]
    assert event.action == "dataset.version_added"
    assert event.payload["table"] == {"catalog": ice.catalog, "name": ice.table}
    assert event.payload["snapshot"] == str(ice.first)


def test_the_same_snapshot_again_is_unchanged_and_has_the_same_digest(
    registry: Registry, tmp_path: Path
) -> None:
    ice = iceberg_table(tmp_path / "ice")
    added = registry.datasets.add_table("events", iceberg=ice.ref, role="train")
    again = registry.datasets.add_table("events", iceberg=ice.ref, snapshot=ice.second, role="train")
    assert added.created and not again.created
    assert again.version.digest == added.version.digest and again.version.ref == "events@1"
    elsewhere = registry.datasets.add_table("copy", iceberg=ice.ref, role="train")  # content-addressed
    assert elsewhere.version.digest == added.version.digest
    assert [f["path"] for f in registry.datasets.files("events@1")] == [DOCUMENT]


def test_delta_table_versions_are_pinned_and_read_back_by_time_travel(
    registry: Registry, tmp_path: Path
) -> None:
    path = delta_table(tmp_path)
    old = registry.datasets.add_table("deltas", delta=str(path), table_version=0, role="train").version
    new = registry.datasets.add_table("deltas", delta=str(path), role="train").version
    assert (old.kind, old.row_count, new.row_count) == ("delta", 250, 120)
    assert old.sources[0] == f"delta:{path}?version=0" and new.sources[0] == f"delta:{path}?version=1"
    assert _checked_out(registry, "deltas@1", tmp_path / "v0") == row_set(rows(0, 250))
    assert _checked_out(registry, "deltas@2", tmp_path / "v1") == row_set(rows(1000, 120))


def test_lake_and_file_versions_share_row_fingerprints(registry: Registry, tmp_path: Path) -> None:
    ice = iceberg_table(tmp_path / "ice")
    registry.datasets.add_table("events", iceberg=ice.ref, snapshot=ice.first, role="train")
    registry.datasets.add_table("events", iceberg=ice.ref, role="train")
    (tmp_path / "csv").mkdir()
    pacsv.write_csv(rows(250, 100), tmp_path / "csv" / "eval.csv")  # 50 of them in snapshot 1
    registry.datasets.add("holdout", tmp_path / "csv" / "eval.csv", role="eval")
    assert registry.datasets.overlap("holdout@1", "events@1").as_dict()["overlapping"] == 50
    assert registry.datasets.overlap("holdout@1", "events@2").as_dict()["overlapping"] == 100
    over = registry.datasets.overlap("events@2", "events@1")
    assert (over.method, over.overlapping, over.a_total) == ("rows", 300, 400)


def test_profile_and_drift_use_the_stored_profile(registry: Registry, tmp_path: Path) -> None:
    path = delta_table(tmp_path)
    registry.datasets.add_table("deltas", delta=str(path), table_version=0, role="train")
    profile = registry.datasets.profile("deltas@1")
    assert profile.rows == 250
    columns = profile.profile["columns"]
    assert (columns["id"]["kind"], columns["id"]["min"], columns["id"]["max"]) == ("number", 0, 249)
    assert columns["colour"]["kind"] == "category" and columns["colour"]["nulls"] == 0
    # scanned in one pass without a copy, yet the profile a Parquet file of the same rows gets
    pq.write_table(rows(0, 250), tmp_path / "same.parquet")
    registry.datasets.add("same", tmp_path / "same.parquet", role="train")
    assert registry.datasets.profile("same@1").profile == profile.profile
    shifted = rows(0, 250).set_column(1, "score", rows(5000, 250).column("score"))
    pq.write_table(shifted, tmp_path / "production.parquet")
    report = registry.datasets.drift("deltas@1", tmp_path / "production.parquet")
    verdicts = {c.column: c.verdict for c in report.columns}
    assert verdicts["score"] == "significant" and verdicts["colour"] == "none"


def test_an_expired_iceberg_snapshot_is_an_error_naming_it(registry: Registry, tmp_path: Path) -> None:
    ice = iceberg_table(tmp_path / "ice")
    registry.datasets.add_table("events", iceberg=ice.ref, snapshot=ice.first, role="train")
    expire(ice, ice.first)
    with pytest.raises(NotFound, match=f"snapshot {ice.first} of the Iceberg table"):
        registry.datasets.checkout("events@1", tmp_path / "out")
    assert not (tmp_path / "out" / "table.parquet").exists()


def test_a_vacuumed_delta_version_is_an_error_naming_it(registry: Registry, tmp_path: Path) -> None:
    path = delta_table(tmp_path)
    registry.datasets.add_table("deltas", delta=str(path), table_version=0, role="train")
    vacuum(path)
    with pytest.raises(SnapshotGone, match="version 0 of the Delta table") as failure:
        registry.datasets.checkout("deltas@1", tmp_path / "out")
    assert failure.value.details["snapshot"] == "0"
    assert list((tmp_path / "out").iterdir()) == []  # no partial file left


def test_deleted_iceberg_data_files_are_an_error_naming_the_snapshot(
    registry: Registry, tmp_path: Path
) -> None:
    ice = iceberg_table(tmp_path / "ice")
    registry.datasets.add_table("events", iceberg=ice.ref, snapshot=ice.first, role="train")
    for data in (tmp_path / "ice" / "warehouse").rglob("*.parquet"):
        data.unlink()
    with pytest.raises(SnapshotGone, match=f"snapshot {ice.first} of the Iceberg table"):
        registry.datasets.checkout("events@1", tmp_path / "out")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Iceberg, Path]:
    """An Iceberg and a Delta table the tests only read (shared, to keep the suite fast)."""
    folder = tmp_path_factory.mktemp("lake")
    return iceberg_table(folder / "ice"), delta_table(folder)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"iceberg": "CATALOG.db"}, InvalidInput, "CATALOG_URI#NAMESPACE.TABLE"),
        ({"iceberg": "{catalog}#events"}, InvalidInput, "NAMESPACE.TABLE"),
        ({"iceberg": "{catalog}#lake.nope"}, NotFound, "'lake.nope'"),
        ({"iceberg": "{catalog}#lake.events", "snapshot": 12345}, NotFound, "snapshot 12345"),
        ({"iceberg": "sqlite:///{tmp}/missing.db#lake.events"}, NotFound, "missing.db"),
        ({"iceberg": "{catalog}#lake.events", "table_version": 1}, InvalidInput, "--snapshot"),
        ({"delta": "{tmp}/nowhere"}, NotFound, "_delta_log"),
        ({"delta": "{delta}", "table_version": 9}, NotFound, "versions go up to 1"),
        ({"delta": "{delta}", "snapshot": 1}, InvalidInput, "--table-version"),
        ({"iceberg": "{catalog}#lake.events", "delta": "{delta}"}, InvalidInput, "exactly one table"),
        ({}, InvalidInput, "exactly one table"),
    ],
)
def test_bad_table_references_are_clear_errors_and_write_nothing(
    registry: Registry,
    tables: tuple[Iceberg, Path],
    tmp_path: Path,
    arguments: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    ice, path = tables
    filled = {
        key: value.format(catalog=ice.catalog, tmp=tmp_path, delta=path) if isinstance(value, str) else value
        for key, value in arguments.items()
    }
    before = _nothing_written(registry)
    with pytest.raises(error, match=message):
        registry.datasets.add_table("events", role="train", **filled)  # type: ignore[arg-type]
    assert _nothing_written(registry) == before
    assert not (tmp_path / "missing.db").exists()  # a missing catalog is not created by looking


def test_without_the_lake_extra_the_error_says_what_to_install(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = delta_table(tmp_path)
    monkeypatch.setitem(sys.modules, "deltalake", None)  # import deltalake now raises ImportError
    with pytest.raises(LakeExtraMissing, match=r"install charter\[lake\]"):
        registry.datasets.add_table("deltas", delta=str(path), role="train")


def _spec(weights: Path, training: list[str]) -> dict[str, object]:
    return {
        "family": "llama-3",
        "architecture": "decoder-only transformer",
        "parameter_count": "8B",
        "weights": str(weights),
        "training": {"datasets": training, "date": "2026-02-01", "base_model": "llama-3-8b"},
        "serving": {"temperature": 0.1},
        "primary_metrics": {"accuracy": "higher"},
    }


def test_reproduce_materialises_lake_training_data_at_its_snapshots(
    registry: Registry, tmp_path: Path
) -> None:
    ice = iceberg_table(tmp_path / "ice")
    path = delta_table(tmp_path)
    registry.datasets.add_table("events", iceberg=ice.ref, snapshot=ice.first, role="train")
    registry.datasets.add_table("deltas", delta=str(path), table_version=0, role="train")
    (tmp_path / "w.bin").write_bytes(b"weights")
    model = registry.models.register("llama", _spec(tmp_path / "w.bin", ["events@1", "deltas@1"])).ref
    result = registry.models.reproduce(model, tmp_path / "repro")
    assert row_set(pq.read_table(tmp_path / "repro" / "events@1" / "table.parquet")) == row_set(rows(0, 300))
    assert row_set(pq.read_table(tmp_path / "repro" / "deltas@1" / "table.parquet")) == row_set(rows(0, 250))
    events = next(d for d in result.datasets if d["ref"] == "events@1")
    assert events["verified"] and events["row_count"] == 300 and events["snapshot"] == ice.first
    assert events["fingerprints_digest"] and events["kind"] == "iceberg"
    expire(ice, ice.first)
    with pytest.raises(NotFound, match=f"snapshot {ice.first}"):
        registry.models.reproduce(model, tmp_path / "again")


def test_near_overlap_and_drift_read_a_lake_version_at_its_snapshot(
    registry: Registry, tmp_path: Path
) -> None:
    ice = iceberg_table(tmp_path / "ice")
    registry.datasets.add_table("events", iceberg=ice.ref, snapshot=ice.first, role="train")
    path = delta_table(tmp_path)
    registry.datasets.add_table("recent", delta=str(path), table_version=1, role="production-sample")
    (tmp_path / "eval").mkdir()
    pq.write_table(rows(290, 20), tmp_path / "eval" / "eval.parquet")  # ids 290-299 are in snapshot 1
    registry.datasets.add("holdout", tmp_path / "eval", role="eval")
    near = registry.datasets.near_overlap("holdout@1", "events@1", column="text", threshold=0.9)
    assert near.exact.overlapping == 10 and near.near_rows >= 10
    report = registry.datasets.drift("events@1", "recent@1")  # ids 1000-1119 against 0-299
    verdicts = {c.column: c.verdict for c in report.columns}
    assert verdicts["id"] == "significant" and verdicts["colour"] == "none"

"""Dataset snapshots through the service, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from charter.clock import ManualClock
from charter.errors import InvalidInput, MissingRole, NotFound
from charter.service.registry import Registry
from tests.conftest import add_user


def _csv(path: Path, rows: list[tuple[object, ...]], header: str = "id,text,score") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(",".join(str(c) for c in r) + "\n" for r in rows))
    return path


def test_add_snapshots_a_table_with_schema_rows_and_audit(registry: Registry, tmp_path: Path) -> None:
    source = _csv(tmp_path / "train.csv", [(i, f"text {i}", i / 10) for i in range(100)])
    result = registry.datasets.add(
        "tickets", source, role="train", sources=["s3://raw/tickets"], message="first"
    )
    v = result.version
    assert result.created and v.ref == "tickets@1" and v.kind == "table"
    assert v.row_count == 100 and [c["name"] for c in v.schema or []] == ["id", "score", "text"]
    assert result.bytes_new > 0 and result.bytes_read == source.stat().st_size
    events = registry.audit.log(subject="dataset:tickets@1")
    assert [e.action for e in events] == ["dataset.version_added"]
    assert events[0].payload["digest"] == v.digest
    assert registry.audit.verify().ok


def test_unchanged_content_creates_no_version_and_stores_nothing(registry: Registry, tmp_path: Path) -> None:
    source = _csv(tmp_path / "d.csv", [(1, "a", 0.5)])
    registry.datasets.add("d", source, role="train")
    again = registry.datasets.add("d", source, role="train")
    assert not again.created and again.version.version == 1 and again.bytes_new == 0
    assert len(registry.datasets.versions("d")) == 1


def test_folders_dedupe_and_diff(registry: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "a.txt").write_text("alpha\n" * 1000)
    (folder / "b.bin").write_bytes(bytes(range(256)) * 100)
    first = registry.datasets.add("corpus", folder, role="train").version
    (folder / "docs" / "c.txt").write_text("gamma\n")
    (folder / "b.bin").write_bytes(bytes(range(256)) * 101)
    second = registry.datasets.add("corpus", folder, role="train")
    assert second.version.version == 2
    assert second.bytes_new < second.bytes_read  # a.txt was stored already
    diff = registry.datasets.diff(first.ref, second.version.ref)
    assert diff.added == ["docs/c.txt"] and diff.changed == ["b.bin"] and diff.unchanged == 1
    assert first.kind == "files"


def test_checkout_is_byte_identical_and_refuses_a_non_empty_folder(
    registry: Registry, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    (folder / "nested").mkdir(parents=True)
    (folder / "nested" / "x.bin").write_bytes(b"\x00\x01" * 300_000)
    (folder / "y.txt").write_text("hello")
    registry.datasets.add("blobs", folder, role="train")
    out = tmp_path / "out"
    report = registry.datasets.checkout("blobs@1", out)
    assert report.files == 2 and report.verified
    assert (out / "nested" / "x.bin").read_bytes() == (folder / "nested" / "x.bin").read_bytes()
    assert (out / "y.txt").read_text() == "hello"
    with pytest.raises(InvalidInput, match=r"not empty|non-empty"):
        registry.datasets.checkout("blobs@1", out)
    registry.datasets.checkout("blobs@1", out, force=True)


def test_time_travel_returns_the_version_current_at_a_time(
    registry: Registry, clock: ManualClock, tmp_path: Path
) -> None:
    before = clock.now()
    clock.advance(timedelta(hours=1))
    registry.datasets.add("d", _csv(tmp_path / "1.csv", [(1, "a", 1)]), role="train")
    t1 = clock.advance(timedelta(hours=1))
    clock.advance(timedelta(hours=1))
    registry.datasets.add("d", _csv(tmp_path / "2.csv", [(2, "b", 2)]), role="train")
    assert registry.datasets.get("d", as_of=t1).version == 1
    assert registry.datasets.get("d").version == 2
    with pytest.raises(NotFound, match="as of"):
        registry.datasets.get("d", as_of=before)


def test_exact_overlap_counts_rows_with_multiplicity_across_formats(
    registry: Registry, tmp_path: Path
) -> None:
    rows = [(i, f"t{i}", i * 1.5) for i in range(50)]
    registry.datasets.add("train", _csv(tmp_path / "train.csv", rows), role="train")
    import json

    jsonl = tmp_path / "eval.jsonl"
    picked = [*rows[:5], rows[0]]  # rows 0..4 occur in train, row 0 twice
    fresh = [(1000 + i, f"new{i}", 0.25) for i in range(14)]
    jsonl.write_text(
        "".join(json.dumps({"id": r[0], "text": r[1], "score": r[2]}) + "\n" for r in picked + fresh)
    )
    registry.datasets.add("eval", jsonl, role="eval")
    overlap = registry.datasets.overlap("eval@1", "train@1")
    assert overlap.method == "rows"
    assert (overlap.overlapping, overlap.a_total) == (6, 20)
    assert overlap.ratio == pytest.approx(0.3)


def test_non_tabular_versions_compare_by_file_digests(registry: Registry, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "1.bin").write_bytes(b"one")
    (a / "2.bin").write_bytes(b"two")
    (b / "x.bin").write_bytes(b"two")
    registry.datasets.add("a", a, role="eval")
    registry.datasets.add("b", b, role="train")
    overlap = registry.datasets.overlap("a@1", "b@1")
    assert (overlap.method, overlap.overlapping, overlap.a_total) == ("files", 1, 2)


def test_refusals_leave_the_store_as_it_was(registry: Registry, tmp_path: Path) -> None:
    source = _csv(tmp_path / "d.csv", [(1, "a", 1)])
    viewer = add_user(registry, "vera", "viewer")
    length = len(registry.audit.log())
    with pytest.raises(MissingRole):
        viewer.datasets.add("d", source, role="train")
    with pytest.raises(InvalidInput, match="accepted: train, eval"):
        registry.datasets.add("d", source, role="testing")
    with pytest.raises(InvalidInput, match="does not exist"):
        registry.datasets.add("d", tmp_path / "missing.csv", role="train")
    with pytest.raises(NotFound):
        registry.datasets.add("d", source, role="train", derived_from="nothing@1")
    assert len(registry.audit.log()) == length
    assert registry.datasets.list() == []


def test_lineage_is_recorded(registry: Registry, tmp_path: Path) -> None:
    registry.datasets.add("raw", _csv(tmp_path / "raw.csv", [(1, "a", 1), (2, "b", 2)]), role="train")
    clean = registry.datasets.add(
        "clean", _csv(tmp_path / "clean.csv", [(1, "a", 1)]), role="train", derived_from="raw@1"
    ).version
    assert clean.derived_from == "raw@1"


def test_gc_removes_only_unreachable_blobs(registry: Registry, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"keep me" * 1000)
    registry.datasets.add("f", source, role="train")
    orphan = "f" * 64
    registry.store.blobs.put(orphan, b"orphan")
    dry = registry.datasets.gc(dry_run=True, grace_seconds=0)
    assert dry.removed == 1 and registry.store.blobs.has(orphan)
    done = registry.datasets.gc(grace_seconds=0)
    assert done.removed == 1 and not registry.store.blobs.has(orphan)
    out = tmp_path / "out"
    registry.datasets.checkout("f@1", out)
    assert (out / "f.bin").read_bytes() == source.read_bytes()
    recent = "e" * 64
    registry.store.blobs.put(recent, b"just written")
    assert registry.datasets.gc().kept_recent == 1 and registry.store.blobs.has(recent)

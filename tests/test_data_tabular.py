"""Tabular snapshots: schema and row count when every file is a table and they agree."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from charter.data.manifest import FileEntry, Manifest
from charter.data.tabular import (
    TABULAR_SUFFIXES,
    UnreadableTable,
    inspect_table,
    merge_type,
    table_format,
    type_name,
)
from charter.errors import InvalidInput

D = "d" * 64


def manifest_of(root: Path) -> Manifest:
    """A manifest naming the files under root (digests do not matter to inspect_table)."""
    if root.is_file():
        return Manifest((FileEntry(root.name, root.stat().st_size, D, (D,) if root.stat().st_size else ()),))
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return Manifest(
        tuple(
            FileEntry(p.relative_to(root).as_posix(), p.stat().st_size, D, (D,) if p.stat().st_size else ())
            for p in files
        )
    )


def test_formats_are_recognised_by_name() -> None:
    assert table_format("a/b.parquet") == "parquet"
    assert table_format("x.CSV") == "csv"
    assert table_format("x.csv.gz") == "csv"
    assert table_format("x.ndjson") == "jsonl"
    assert table_format("x.jsonl.zst") == "jsonl"
    assert table_format("x.json") is None
    assert table_format("x.parquet.gz") is None
    assert ".csv.gz" in TABULAR_SUFFIXES


def test_a_folder_of_parquet_and_csv_parts_is_one_table(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    pq.write_table(
        pa.table({"id": pa.array([1, 2], pa.int32()), "name": ["a", "b"], "score": [0.5, 1.0]}),
        root / "part-0.parquet",
    )
    (root / "part-1.csv").write_text("score,id,name\n2,3,c\n2.5,4,d\n1,5,e\n")
    with gzip.open(root / "part-2.csv.gz", "wt") as handle:
        handle.write("id,name,score\n6,f,\n")
    info = inspect_table(root, manifest_of(root))
    assert info is not None
    assert info.schema == [
        {"name": "id", "type": "integer"},
        {"name": "name", "type": "string"},
        {"name": "score", "type": "float"},
    ]
    assert info.row_count == 6
    assert info.files == ("part-0.parquet", "part-1.csv", "part-2.csv.gz")


def test_a_single_file_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": null}\n')
    info = inspect_table(path, manifest_of(path))
    assert info is not None
    assert info.schema == [{"name": "a", "type": "integer"}, {"name": "b", "type": "string"}]
    assert info.row_count == 2


def test_mismatching_csv_schemas_are_not_a_table(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.csv").write_text("x,y\n1,2\n")
    (root / "b.csv").write_text("x,z\n1,2\n")
    assert inspect_table(root, manifest_of(root)) is None


def test_incompatible_types_are_not_a_table(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.csv").write_text("x\n1\n")
    (root / "b.csv").write_text("x\nhello\n")
    assert inspect_table(root, manifest_of(root)) is None


def test_a_non_tabular_file_makes_plain_files(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.csv").write_text("x\n1\n")
    (root / "README.md").write_text("about")
    assert inspect_table(root, manifest_of(root)) is None


def test_duplicate_column_names_are_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("x,x\n1,2\n")
    assert inspect_table(path, manifest_of(path)) is None


def test_empty_and_header_only_files_agree_with_anything(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.csv").write_text("x,y\n1,hello\n")
    (root / "b.csv").write_text("x,y\n")
    (root / "c.csv").write_bytes(b"")
    info = inspect_table(root, manifest_of(root))
    assert info is not None
    assert info.schema == [{"name": "x", "type": "integer"}, {"name": "y", "type": "string"}]
    assert info.row_count == 1


def test_a_corrupt_parquet_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UnreadableTable, match=r"broken\.parquet"):
        inspect_table(path, manifest_of(path))


def test_a_malformed_json_lines_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(InvalidInput, match=r"bad\.jsonl"):
        inspect_table(path, manifest_of(path))


def test_a_file_changed_since_the_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    manifest = manifest_of(path)
    path.write_text("x\n1\n2\n")
    with pytest.raises(InvalidInput, match="changed since"):
        inspect_table(path, manifest)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (pa.int8(), "integer"),
        (pa.uint64(), "integer"),
        (pa.float32(), "float"),
        (pa.decimal128(10, 2), "decimal"),
        (pa.large_string(), "string"),
        (pa.dictionary(pa.int32(), pa.string()), "string"),
        (pa.binary(), "binary"),
        (pa.date32(), "date"),
        (pa.timestamp("ms", tz="UTC"), "timestamp"),
        (pa.time64("us"), "time"),
        (pa.list_(pa.int64()), "list"),
        (pa.struct([("a", pa.int64())]), "struct"),
        (pa.null(), "null"),
        (pa.bool_(), "boolean"),
    ],
)
def test_type_names(kind: pa.DataType, name: str) -> None:
    assert type_name(kind) == name


@pytest.mark.parametrize(
    ("a", "b", "merged"),
    [
        ("integer", "integer", "integer"),
        ("integer", "float", "float"),
        ("decimal", "integer", "decimal"),
        ("null", "string", "string"),
        ("date", "timestamp", "timestamp"),
        ("time", "string", "string"),
        ("integer", "string", None),
        ("boolean", "integer", None),
        ("binary", "string", None),
    ],
)
def test_type_merging(a: str, b: str, merged: str | None) -> None:
    assert merge_type(a, b) == merged
    assert merge_type(b, a) == merged

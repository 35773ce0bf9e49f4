"""Canonical row fingerprints: the same rows match across CSV, Parquet and JSON Lines."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.data import fingerprints
from charter.data.fingerprints import (
    RowHasher,
    column_hashes,
    fingerprint_table,
    from_bytes,
    to_bytes,
)
from charter.data.hashing import hash_bytes
from charter.data.manifest import FileEntry, Manifest
from charter.data.tabular import inspect_table
from charter.errors import InvalidInput

D = "d" * 64

# One logical table with the awkward cases: floats that are integral, tiny and inexact; nulls in
# every column; the empty string; "é" precomposed in Parquet and decomposed in the text files;
# dates, timestamps with fractions, a timestamp at midnight; booleans; non-ASCII text.
NFC = "caf\u00e9"
NFD = "cafe\u0301"
ROWS: list[dict[str, Any]] = [
    {"i": 1, "f": 0.1, "s": "a", "b": True, "d": "2024-01-01", "ts": "2024-01-01T10:00:00.5"},
    {"i": 2, "f": 1e-07, "s": NFD, "b": False, "d": "1969-12-31", "ts": "2024-01-01T10:00:00"},
    {"i": 3, "f": 3.0, "s": "", "b": None, "d": None, "ts": None},
    {"i": None, "f": None, "s": None, "b": True, "d": "2000-02-29", "ts": "1999-12-31T23:59:59.123456"},
    {"i": -5, "f": -0.0, "s": "Ünïcødé ✓", "b": False, "d": "2024-01-01", "ts": "2024-01-02T00:00:00"},
    {"i": 1, "f": 0.1, "s": "a", "b": True, "d": "2024-01-01", "ts": "2024-01-01T10:00:00.5"},
]
COLUMNS = ["i", "f", "s", "b", "d", "ts"]


def _csv_value(value: Any) -> str:
    if value is None:
        return ""  # unquoted empty field: null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'  # quoted: "" is the empty string
    return repr(value)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    lines = [",".join(columns)] + [",".join(_csv_value(row[c]) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def write_parquet(path: Path) -> Path:
    def stamp(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    table = pa.table(
        {
            # column order differs from the text files on purpose: fingerprints use name order
            "ts": pa.array([stamp(r["ts"]) for r in ROWS], pa.timestamp("us")),
            "s": [NFC if r["s"] == NFD else r["s"] for r in ROWS],
            "i": pa.array([r["i"] for r in ROWS], pa.int16()),
            "f": pa.array([r["f"] for r in ROWS], pa.float64()),
            "b": [r["b"] for r in ROWS],
            "d": pa.array([date.fromisoformat(r["d"]) if r["d"] else None for r in ROWS], pa.date32()),
        }
    )
    pq.write_table(table, path)
    return path


def fingerprint_file(path: Path) -> np.ndarray:
    manifest = Manifest((FileEntry(path.name, path.stat().st_size, D, (D,)),))
    info = inspect_table(path, manifest)
    assert info is not None
    return fingerprint_table(path, info)


def fingerprint_values(**columns: pa.Array) -> np.ndarray:
    batch = pa.record_batch(list(columns.values()), names=list(columns))
    return RowHasher(sorted(columns)).hash_batch(batch)


def test_the_same_rows_match_across_csv_parquet_and_json_lines(tmp_path: Path) -> None:
    from_csv = fingerprint_file(write_csv(tmp_path / "t.csv", ROWS, COLUMNS))
    from_jsonl = fingerprint_file(write_jsonl(tmp_path / "t.jsonl", ROWS))
    from_parquet = fingerprint_file(write_parquet(tmp_path / "t.parquet"))
    assert len(from_csv) == len(ROWS)
    assert np.array_equal(from_csv, from_jsonl)
    assert np.array_equal(from_csv, from_parquet)
    assert np.all(np.diff(from_csv.astype(np.float64)) >= 0)  # sorted
    assert len(np.unique(from_csv)) == len(ROWS) - 1  # the duplicate row is kept, and equal


def test_a_folder_of_parts_equals_the_whole(tmp_path: Path) -> None:
    whole = fingerprint_file(write_csv(tmp_path / "whole.csv", ROWS, COLUMNS))
    root = tmp_path / "parts"
    root.mkdir()
    write_csv(root / "a.csv", ROWS[:3], COLUMNS)
    write_jsonl(root / "b.jsonl", ROWS[3:])
    files = sorted(root.iterdir())
    manifest = Manifest(tuple(FileEntry(p.name, p.stat().st_size, D, (D,)) for p in files))
    info = inspect_table(root, manifest)
    assert info is not None and info.row_count == len(ROWS)
    assert np.array_equal(fingerprint_table(root, info), whole)


def one(array: pa.Array) -> int:
    return int(fingerprint_values(x=array)[0])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (pa.array([3]), pa.array([3.0])),
        (pa.array([3], pa.int8()), pa.array([3], pa.uint64())),
        (pa.array([0]), pa.array([-0.0])),
        (pa.array([0.1], pa.float32()), pa.array([0.1])),
        (pa.array([1e-7], pa.float32()), pa.array([1e-7])),
        (pa.array([2.5], pa.float16()), pa.array([2.5])),
        (pa.array([float("nan")]), pa.array([None], pa.int64())),
        (pa.array([None], pa.string()), pa.array([None], pa.float64())),
        (pa.array([None], pa.null()), pa.array([None], pa.bool_())),
        (pa.array([NFD]), pa.array([NFC])),
        (pa.array([NFC]), pa.array([NFC], pa.large_string())),
        (pa.array([date(2024, 5, 1)]), pa.array(["2024-05-01"])),
        (pa.array([datetime(2024, 5, 1)], pa.timestamp("s")), pa.array([date(2024, 5, 1)])),
        (
            pa.array([datetime(2024, 5, 1, 10, 30, 0, 250000)], pa.timestamp("ns")),
            pa.array(["2024-05-01T10:30:00.25"]),
        ),
        (
            pa.array(
                [datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))],
                pa.timestamp("ms", tz="+02:00"),
            ),
            pa.array([datetime(2024, 5, 1, 10, 30)], pa.timestamp("us")),
        ),
        (
            pa.array([datetime(2024, 5, 1, 10, 30, tzinfo=UTC)], pa.timestamp("s", tz="UTC")),
            pa.array(["2024-05-01T10:30:00"]),
        ),
        (pa.array([10 * 3600 * 1000 + 5], pa.time32("ms")), pa.array(["10:00:00.005"])),
        (pa.array([date(1, 1, 1)]), pa.array(["0001-01-01"])),
        (pa.array([Decimal("1.50")], pa.decimal128(5, 2)), pa.array([1.5])),
        (pa.array([Decimal("3.00")], pa.decimal128(5, 2)), pa.array([3])),
        (pa.array(["x"]).dictionary_encode(), pa.array(["x"])),
        (pa.array([b"ab"], pa.binary(2)), pa.array([b"ab"])),
    ],
)
def test_canonical_forms_that_are_equal(a: pa.Array, b: pa.Array) -> None:
    assert one(a) == one(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (pa.array([3]), pa.array(["3"])),  # a number is never a string
        (pa.array([True]), pa.array([1])),  # a boolean is not a number
        (pa.array([""]), pa.array([None], pa.string())),  # the empty string is not null
        (pa.array([0.1]), pa.array([0.1 + 2**-55])),  # floats keep every bit
        (pa.array([2**63], pa.uint64()), pa.array([-(2**63)])),
        (pa.array(["ab"]), pa.array([b"ab"])),  # text is not bytes
        (pa.array(["a"]), pa.array(["a\x00"])),
        (pa.array(["abcdefgh"]), pa.array(["abcdefgh\x00"])),
        (pa.array([datetime(2024, 5, 1, 0, 0, 1)], pa.timestamp("s")), pa.array([date(2024, 5, 1)])),
    ],
)
def test_canonical_forms_that_differ(a: pa.Array, b: pa.Array) -> None:
    assert one(a) != one(b)


def test_columns_are_ordered_by_name_and_positions_matter() -> None:
    ab = fingerprint_values(a=pa.array([1]), b=pa.array([2]))
    ba = RowHasher(["a", "b"]).hash_batch(pa.record_batch([pa.array([2]), pa.array([1])], names=["b", "a"]))
    swapped = fingerprint_values(a=pa.array([2]), b=pa.array([1]))
    assert ab[0] == ba[0]
    assert ab[0] != swapped[0]
    assert (
        fingerprint_values(a=pa.array([1]))[0] != fingerprint_values(a=pa.array([1]), b=pa.array([None]))[0]
    )


def test_dictionary_and_plain_paths_agree() -> None:
    values = pa.array([f"v{i % 7}" for i in range(5000)] + [None, "", "é"])
    hasher = RowHasher(["x"])
    repetitive = hasher.hash_batch(pa.record_batch([values], names=["x"]))
    assert hasher.repetitive == {"x": True}
    assert np.array_equal(repetitive, fingerprint_values(x=values.slice(0, len(values))))
    assert np.array_equal(column_hashes(values), column_hashes(values.dictionary_encode()))


def test_sliced_arrays_hash_like_fresh_ones() -> None:
    values = pa.array(["alpha", None, "a much longer string than thirty-two bytes", "", "x" * 9] * 3)
    for start in range(5):
        sliced = values.slice(start, 7)
        assert np.array_equal(column_hashes(sliced), column_hashes(pa.array(sliced.to_pylist())))
    numbers = pa.array([1, None, 3, 4, 5])
    assert np.array_equal(column_hashes(numbers.slice(2)), column_hashes(pa.array([3, 4, 5])))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=70), min_size=1, max_size=40))
def test_short_and_long_string_paths_agree(values: list[bytes]) -> None:
    data = np.frombuffer(b"".join(values), dtype=np.uint8)
    lengths = np.array([len(v) for v in values], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    expected = [
        hash_bytes(
            np.frombuffer(v, np.uint8), np.zeros(1, np.int64), np.array([len(v)]), fingerprints.TAG_BINARY
        )[0]
        for v in values
    ]
    assert list(hash_bytes(data, starts, lengths, fingerprints.TAG_BINARY)) == expected


def test_equal_strings_hash_equal_and_distinct_ones_do_not_collide() -> None:
    values = [f"user-{i:06d}" for i in range(50_000)] + ["x" * n for n in range(100)]
    hashes = column_hashes(pa.array(values))
    assert len(np.unique(hashes)) == len(values)
    assert np.array_equal(column_hashes(pa.array(values[:10])), hashes[:10])


def test_nested_values_use_the_slow_path_and_still_canonicalise() -> None:
    a = pa.array([[1, 2], None, [3.0]])
    b = pa.array([[1.0, 2.0], None, [3]])
    assert np.array_equal(column_hashes(a), column_hashes(b))
    assert column_hashes(pa.array([{"k": "x"}]))[0] != column_hashes(pa.array([{"k": "y"}]))[0]


def test_bytes_round_trip() -> None:
    fps = np.array([0, 1, 2**64 - 1, 12345], dtype=np.uint64)
    data = to_bytes(fps)
    assert len(data) == 32
    assert data[8:16] == (1).to_bytes(8, "little")
    assert np.array_equal(from_bytes(data), fps)
    with pytest.raises(InvalidInput, match="multiple of 8"):
        from_bytes(b"123")


def test_an_empty_table_has_no_fingerprints(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "header.csv", [], COLUMNS)
    assert len(fingerprint_file(path)) == 0

"""Tabular snapshots: which files form a table, its schema and its row count.

A snapshot is a table when every file in it is tabular — Parquet, CSV or JSON Lines, by file name
(`TABULAR_SUFFIXES`; CSV and JSON Lines may be compressed with gzip, bzip2 or zstd, named
`.csv.gz`, `.jsonl.zst` and so on; Parquet compresses internally) — and all files agree on the
schema: the same column names, and compatible types (see `merge_type`). Types are reported by
canonical name: null, boolean, integer, float, decimal, string, binary, date, timestamp, time,
duration, list, struct, map — so int32 in Parquet and int64 in CSV are both "integer".

How files are read, so that the same table in any format gives the same values:

- CSV: the header names the columns; types are inferred over the whole file (pyarrow). An
  unquoted empty field is null, a quoted one (`""`) is the empty string, and no other spelling
  means null ("NA", "null" stay strings). CSV has no types, so inference decides: a column whose
  values all look like integers is an integer column even if another format stores it as text.
- JSON Lines: one object per line; types are inferred, and a string column whose every value is
  an ISO-8601 date or timestamp becomes a timestamp column (JSON has no date type).
- Parquet: the stored Arrow schema.

An empty (0-byte) file is a table with no rows that agrees with any schema. A CSV with a header
but no rows has columns of type null, which also agree with anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.data.manifest import Manifest
from charter.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

_COMPRESSIONS = (".gz", ".bz2", ".zst")
TABULAR_SUFFIXES = (
    ".parquet",
    ".csv",
    ".jsonl",
    ".ndjson",
    *(base + comp for base in (".csv", ".jsonl", ".ndjson") for comp in _COMPRESSIONS),
)

BATCH_ROWS = 65_536


class UnreadableTable(InvalidInput):
    def __init__(self, path: str, complaint: str) -> None:
        super().__init__(
            f"{path} looks like a table by its name but cannot be read: {complaint}. Fix or remove the "
            f"file, or rename it if it is not a table (tables are {', '.join(TABULAR_SUFFIXES[:4])})",
            path=path,
            complaint=complaint,
        )


@dataclass(frozen=True)
class TableInfo:
    schema: list[dict[str, str]]
    row_count: int
    files: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [column["name"] for column in self.schema]


def table_format(path: str) -> str | None:
    """'parquet', 'csv' or 'jsonl' for a tabular file name, else None (case-insensitive)."""
    name = path.lower()
    if name.endswith(".parquet"):
        return "parquet"
    for comp in ("", *_COMPRESSIONS):
        if name.endswith(".csv" + comp):
            return "csv"
        if name.endswith((".jsonl" + comp, ".ndjson" + comp)):
            return "jsonl"
    return None


def file_location(root: Path, path: str) -> Path:
    """Where the manifest path `path` of a snapshot taken from `root` lives on disk."""
    root = Path(root)
    return root / path if root.is_dir() else root


def inspect_table(root: Path, manifest: Manifest) -> TableInfo | None:
    """Schema and row count when the snapshot is one table (see the module docstring), else None."""
    if not manifest.files or any(table_format(entry.path) is None for entry in manifest.files):
        return None
    merged: dict[str, str] | None = None
    rows = 0
    for entry in manifest.files:
        location = file_location(root, entry.path)
        _check_unchanged(location, entry.path, entry.size)
        if entry.size == 0:
            continue
        schema, count = _read_schema(location, entry.path)
        rows += count
        names = [field.name for field in schema]
        if len(set(names)) != len(names):
            return None
        types = {field.name: type_name(field.type) for field in schema}
        if merged is None:
            merged = types
            continue
        if set(types) != set(merged):
            return None
        for name, kind in types.items():
            both = merge_type(merged[name], kind)
            if both is None:
                return None
            merged[name] = both
    final = merged or {}
    columns = [{"name": name, "type": final[name]} for name in sorted(final)]
    return TableInfo(schema=columns, row_count=rows, files=tuple(entry.path for entry in manifest.files))


def type_name(kind: pa.DataType) -> str:
    """The canonical name of an Arrow type."""
    import pyarrow as pa

    t = pa.types
    if pa.types.is_dictionary(kind):
        return type_name(kind.value_type)
    checks = (
        (t.is_null, "null"),
        (t.is_boolean, "boolean"),
        (t.is_integer, "integer"),
        (t.is_floating, "float"),
        (t.is_decimal, "decimal"),
        (lambda k: t.is_string(k) or t.is_large_string(k) or t.is_string_view(k), "string"),
        (
            lambda k: (
                t.is_binary(k) or t.is_large_binary(k) or t.is_fixed_size_binary(k) or t.is_binary_view(k)
            ),
            "binary",
        ),
        (t.is_date, "date"),
        (t.is_timestamp, "timestamp"),
        (t.is_time, "time"),
        (t.is_duration, "duration"),
        (t.is_map, "map"),
        (
            lambda k: t.is_list(k) or t.is_large_list(k) or t.is_fixed_size_list(k) or t.is_list_view(k),
            "list",
        ),
        (t.is_struct, "struct"),
    )
    for check, name in checks:
        if check(kind):
            return name
    return str(kind)


_NUMBERS = {"integer": 0, "decimal": 1, "float": 2}
_TEXTUAL = {"string", "date", "timestamp", "time"}


def merge_type(a: str, b: str) -> str | None:
    """The type two files' columns share, or None if they are incompatible.

    null agrees with anything; integer, decimal and float widen to the widest; date and timestamp
    give timestamp; a date, timestamp or time column agrees with a string column (their canonical
    values are ISO-8601 text, so fingerprints match). Anything else must be equal.
    """
    if a == b:
        return a
    if a == "null" or b == "null":
        return b if a == "null" else a
    if a in _NUMBERS and b in _NUMBERS:
        return a if _NUMBERS[a] > _NUMBERS[b] else b
    if {a, b} == {"date", "timestamp"}:
        return "timestamp"
    if "string" in (a, b) and a in _TEXTUAL and b in _TEXTUAL:
        return "string"
    return None


def read_tables(location: Path, path: str, columns: list[str]) -> Iterator[pa.Table]:
    """The rows of one tabular file as tables (a Parquet row group each), `columns` only."""
    if os.path.getsize(location) == 0:
        return
    fmt = table_format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            dictionary = _dictionary_columns(pq.ParquetFile(location), columns)
            parquet = pq.ParquetFile(location, read_dictionary=dictionary)
            for group in range(parquet.num_row_groups):  # a row group at a time: decoded in parallel
                yield parquet.read_row_group(group, columns=columns)
        else:
            yield _read_text_table(location, fmt).select(columns)
    except (OSError, ValueError, KeyError, NotImplementedError, TypeError) as exc:  # every pyarrow error
        raise UnreadableTable(path, _complaint(exc)) from None


def read_batches(location: Path, path: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The rows of one tabular file in record batches of at most BATCH_ROWS, `columns` only."""
    for table in read_tables(location, path, columns):
        yield from table.to_batches(max_chunksize=BATCH_ROWS)


def _dictionary_columns(parquet: Any, columns: list[str]) -> list[str]:
    """String columns stored with small dictionaries in every row group: read them as dictionaries.

    Decoding such a column to dictionary indices is much cheaper than materialising every string,
    and the fingerprints hash only the distinct values. A dictionary page over `_SMALL_DICTIONARY`
    bytes suggests the writer fell back to plain pages (high cardinality): read those as strings.
    """
    import pyarrow as pa

    schema = parquet.schema_arrow
    metadata = parquet.metadata
    wanted = [name for name in columns if pa.types.is_string(schema.field(name).type)]
    positions = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    chosen = []
    for name in wanted:
        index = positions.get(name)
        if index is None:
            continue
        chunks = [metadata.row_group(g).column(index) for g in range(metadata.num_row_groups)]
        if chunks and all(
            chunk.has_dictionary_page
            and chunk.data_page_offset - (chunk.dictionary_page_offset or 0) <= _SMALL_DICTIONARY
            for chunk in chunks
        ):
            chosen.append(name)
    return chosen


_SMALL_DICTIONARY = 256 * 1024


def _read_schema(location: Path, path: str) -> tuple[pa.Schema, int]:
    try:
        if table_format(path) == "parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(location)
            return parquet.schema_arrow, parquet.metadata.num_rows
        table = _read_text_table(location, table_format(path))
        return table.schema, table.num_rows
    except (OSError, ValueError, NotImplementedError, TypeError) as exc:  # every pyarrow error
        raise UnreadableTable(path, _complaint(exc)) from None


def _read_text_table(location: Path, fmt: str | None) -> pa.Table:
    if fmt == "csv":
        import pyarrow.csv as pv

        options = pv.ConvertOptions(
            strings_can_be_null=True, quoted_strings_can_be_null=False, null_values=[""]
        )
        return pv.read_csv(location, convert_options=options)
    import pyarrow.json as pj

    return _parse_timestamps(pj.read_json(location))


def _parse_timestamps(table: pa.Table) -> pa.Table:
    """Turn JSON string columns whose every value is an ISO-8601 date or timestamp into timestamps.

    pyarrow infers timestamps in JSON only without fractional seconds; CSV and Parquet have typed
    timestamps either way. Parsing here makes "2024-05-01T00:00:00.5" in JSON equal the same
    instant in the other formats, and a midnight timestamp equal its date.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for index, field in enumerate(table.schema):
        if not pa.types.is_string(field.type) or table.column(index).null_count == len(table):
            continue
        for target in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
            try:
                parsed = pc.cast(table.column(index), target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
            table = table.set_column(index, field.name, parsed)
            break
    return table


def _check_unchanged(location: Path, path: str, size: int) -> None:
    try:
        actual = os.path.getsize(location)
    except OSError as exc:
        raise UnreadableTable(path, exc.strerror or str(exc)) from None
    if actual != size:
        raise InvalidInput(
            f"{path} changed since it was snapshotted ({size} bytes then, {actual} now); snapshot it again",
            path=path,
        )


def _complaint(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

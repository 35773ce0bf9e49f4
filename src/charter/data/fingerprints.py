"""Canonical row fingerprints: one 64-bit hash per row, equal for equal rows in any format.

A row's fingerprint hashes its values in column-name order, each in a canonical form, so the
same rows written as CSV, Parquet or JSON Lines give the same fingerprints:

- numbers: an integral value is an integer whatever its storage (3.0 == 3 == int32 3, -0.0 == 0);
  any other float is its float64 value, i.e. its shortest round-trip text (a float32 or float16
  is first rounded to its own shortest text, so float32 0.1 == 0.1). NaN is null (pandas writes
  missing numbers as NaN, and CSV cannot tell them apart). Decimals are compared as float64;
- strings: Unicode NFC ("é" precomposed == "e" + combining accent); binary values are bytes;
- booleans are their own kind: true is not 1;
- dates, timestamps and times are their ISO-8601 text, and compare equal to strings of that
  text (JSON has no date type): "2024-05-01", "2024-05-01T10:30:00.25", "10:30:00". Timestamps
  are in UTC, and one without a zone is taken to be UTC; a timestamp at exactly midnight is its
  date ("2024-05-01"), as an integral float is its integer;
- one null marker for every type; the empty string is not null;
- a number never equals a string (3 is not "3"): every kind hashes with its own tag. Note that
  CSV has no types, so a CSV column of digits is read as integers (see `charter.data.tabular`);
- lists, structs and maps (rare in these formats) are hashed from their canonical JSON text, one
  value at a time — correct, but much slower than the vectorised kinds.

Everything else is vectorised over Arrow record batches with numpy (`charter.data.hashing`):
per column, each value becomes a 64-bit hash (integers and float bits with a kind tag through
splitmix64's finaliser; strings and ISO text by a word-wise hash straight from the Arrow data
buffer). A row folds its column hashes in column order, h = h * K + column hash, and is mixed
once more at the end, so swapping two values between columns changes the fingerprint. String
columns with few distinct values are dictionary-encoded first and only the distinct values are
hashed. The row array is sorted and kept with duplicates, ready for `charter.data.overlap`.
"""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from charter.data.hashing import U64, hash_bytes, mix, nulls, raw_ints, string_buffers, values
from charter.data.isotext import PER_SECOND, iso_text
from charter.data.tabular import TableInfo
from charter.errors import InvalidInput

_ROW = np.uint64(0x9E3779B97F4A7C15)  # odd: row combination multiplier
_SEED = np.uint64(0x243F6A8885A308D3)
NULL = np.uint64(0x13198A2E03707344)  # the one null marker
_REPEATS = 4  # a string column is "repetitive" if it has at most 1 distinct value in 4

TAG_INT = np.uint64(0xA4093822299F31D0)
TAG_BIG_UINT = np.uint64(0x082EFA98EC4E6C89)
TAG_FLOAT = np.uint64(0x452821E638D01377)
TAG_BOOL = np.uint64(0xBE5466CF34E90C6C)
TAG_STRING = np.uint64(0xC0AC29B7C97C50DD)
TAG_BINARY = np.uint64(0x3F84D5B5B5470917)
TAG_DURATION = np.uint64(0x9216D5D98979FB1B)
TAG_NESTED = np.uint64(0xD1310BA698DFB5AC)


def fingerprint_table(root: Path, info: TableInfo) -> U64:
    """Sorted fingerprints of every row of the table (duplicates kept)."""
    from charter.data.scan import scan_table

    fps = scan_table(root, info, profile=False).fingerprints
    assert fps is not None
    return fps


class RowHasher:
    """Fingerprints rows batch by batch, remembering per string column whether it repeats a lot.

    A string column with few distinct values (at most one in `_REPEATS`) is dictionary-encoded
    by Arrow and only its distinct values are hashed; the hashes are the same either way.
    `column` and `combine` are the two halves of `hash_batch`, for callers that hash the columns
    of a batch in parallel (`charter.data.scan`).
    """

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.repetitive: dict[str, bool] = {}

    def hash_batch(self, batch: pa.RecordBatch) -> U64:
        """Unsorted fingerprints of the rows of one record batch."""
        return self.combine([self.column(name, batch.column(name)) for name in self.columns], batch.num_rows)

    def combine(self, hashes: list[U64], rows: int) -> U64:
        """Row fingerprints from the column hashes of `rows` rows, given in `columns` order."""
        h = np.full(rows, _SEED, dtype=np.uint64)
        for column in hashes:
            h *= _ROW
            h += column
        h ^= np.uint64(len(self.columns))
        return mix(h)

    def column(self, name: str, array: pa.Array) -> U64:
        """The hash of each value of column `name` (`column_hashes`), dictionary-encoding it first
        when it has repeated a lot so far."""
        if not _is_string(array.type) or len(array) < 1024 or self.repetitive.get(name) is False:
            return column_hashes(array)
        encoded = pc.dictionary_encode(array)
        self.repetitive[name] = len(encoded.dictionary) * _REPEATS <= len(array)
        return column_hashes(encoded)


def fingerprint_batch(batch: pa.RecordBatch, columns: list[str]) -> U64:
    """Unsorted fingerprints of the rows of one record batch, columns taken in the given order."""
    return RowHasher(columns).hash_batch(batch)


def to_bytes(fps: U64) -> bytes:
    """Little-endian uint64s."""
    return np.ascontiguousarray(fps, dtype="<u8").tobytes()


def from_bytes(data: bytes) -> U64:
    if len(data) % 8:
        raise InvalidInput(
            f"fingerprint data is {len(data)} bytes long; expected a multiple of 8 (little-endian uint64s)"
        )
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


# --- per column ------------------------------------------------------------------------------


def column_hashes(array: pa.Array) -> U64:
    """One 64-bit hash per value of `array` (nulls get the null marker)."""
    kind = array.type
    t = pa.types
    if t.is_dictionary(kind):
        distinct = column_hashes(array.dictionary)
        indices = pc.fill_null(array.indices, 0).to_numpy(zero_copy_only=False)
        h = distinct[indices] if len(distinct) else np.full(len(array), NULL, dtype=np.uint64)
    elif t.is_null(kind):
        return np.full(len(array), NULL, dtype=np.uint64)
    elif t.is_boolean(kind):
        bits = pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(np.uint64)
        h = mix(bits ^ TAG_BOOL)
    elif t.is_integer(kind):
        h = _integers(array)
    elif t.is_floating(kind) or t.is_decimal(kind):
        return _floats(array)
    elif _is_string(kind):
        h = _strings(array)
    elif (
        t.is_binary(kind) or t.is_large_binary(kind) or t.is_binary_view(kind) or t.is_fixed_size_binary(kind)
    ):
        h = _hash_var(array, TAG_BINARY)
    elif t.is_date(kind) or t.is_timestamp(kind) or t.is_time(kind):
        h = hash_bytes(*iso_text(array), TAG_STRING)
    elif t.is_duration(kind):
        nanos = raw_ints(array, np.int64) * (1_000_000_000 // PER_SECOND[kind.unit])
        h = mix(nanos.view(np.uint64) ^ TAG_DURATION)
    else:
        h = _nested(array)
    if array.null_count:
        h[nulls(array)] = NULL
    return h


def _is_string(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind))


def _integers(array: pa.Array) -> U64:
    kind = array.type
    if pa.types.is_uint64(kind):
        raw = values(array, np.uint64)
        big = raw > np.uint64(2**63 - 1)
        tags: U64 = np.where(big, TAG_BIG_UINT, TAG_INT).astype(np.uint64)
        return mix(raw ^ tags)
    ints = values(array, kind.to_pandas_dtype()).astype(np.int64)
    return mix(ints.view(np.uint64) ^ TAG_INT)


def _floats(array: pa.Array) -> U64:
    kind = array.type
    if pa.types.is_float16(kind):
        shortest = array.to_numpy(zero_copy_only=False).astype(str)  # numpy: shortest float16 text
        x = np.where(array.is_null().to_numpy(zero_copy_only=False), np.nan, shortest.astype(np.float64))
    elif pa.types.is_float32(kind):
        x = pc.cast(pc.cast(array, pa.string()), pa.float64()).to_numpy(zero_copy_only=False)
    elif pa.types.is_decimal(kind):
        x = pc.cast(array, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    else:
        x = values(array, np.float64)
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        as_int = x.astype(np.int64)  # NaN, inf and |x| >= 2**63 give INT64_MIN, never equal to x
    integral = as_int.astype(np.float64) == x
    h = np.where(integral, as_int.view(np.uint64) ^ TAG_INT, x.view(np.uint64) ^ TAG_FLOAT)
    mix(h)
    h[np.isnan(x)] = NULL
    if array.null_count:
        h[nulls(array)] = NULL
    return h


def _strings(array: pa.Array) -> U64:
    return _hash_var(array, TAG_STRING, nfc=True)


def _hash_var(array: pa.Array, tag: np.uint64, *, nfc: bool = False) -> U64:
    """Hash each value of a string or binary array from its bytes (strings in NFC when `nfc`)."""
    n = len(array)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    kind = array.type
    if pa.types.is_fixed_size_binary(kind):
        width = kind.byte_width
        data = np.frombuffer(array.buffers()[1], dtype=np.uint8)
        starts = (np.arange(n, dtype=np.int64) + array.offset) * width
        return hash_bytes(data, starts, np.full(n, width, dtype=np.int64), tag)
    if pa.types.is_string_view(kind) or pa.types.is_binary_view(kind):
        array = pc.cast(array, pa.large_string() if nfc else pa.large_binary())
    offsets, data = string_buffers(array)
    if nfc and len(data) and int(data.max()) >= 0x80:  # ASCII is already NFC
        offsets, data = string_buffers(pc.utf8_normalize(array, "NFC"))
    first = int(offsets[0])
    return hash_bytes(data, offsets[:-1] - first, np.diff(offsets), tag)


# --- nested values (slow path) ---------------------------------------------------------------


def _nested(array: pa.Array) -> U64:
    out = np.empty(len(array), dtype=np.uint64)
    for i, value in enumerate(array.to_pylist()):
        text = json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        out[i] = xxhash.xxh3_64_intdigest(text.encode("utf-8"))
    return mix(out ^ TAG_NESTED)


def _canonical(value: Any) -> Any:
    """A JSON-able value following the canonical forms of the module docstring."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 2.0**63 else value
    if isinstance(value, int | str) and not isinstance(value, str):
        return value
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat().rstrip("0").rstrip(".") if value.microsecond else value.isoformat()
    if isinstance(value, date | time):
        text = value.isoformat()
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if hasattr(value, "__float__"):  # Decimal
        return _canonical(float(value))
    return str(value)

"""Statistical profiles of tabular snapshots: small, JSON-able summaries per column.

One pass over the table's record batches (pyarrow compute and numpy, no Python loop per row),
shared with the row fingerprints and spread over the cores (`charter.data.scan`).
Every column gets its type, row count, null count and a distinct-count estimate (a KMV sketch:
the k smallest 64-bit value hashes; distinct ≈ (k − 1) / (k-th smallest / 2**64), exact below k).
Then, by kind:

- number (integer, float, decimal): min, max, mean, standard deviation (exact, from sums), and,
  from a seeded uniform sample of at most `SAMPLE` values, the decile edges (what drift bins on),
  the share of values in each decile bin, 101 percentiles (for the KS statistic) and a 20-bin
  fixed-width histogram over [min, max] scaled to the column's count;
- category (strings or booleans with at most `CATEGORY_MAX` distinct values, counted exactly): the
  `TOP_K` most frequent values with their counts, plus an "other" count;
- text (strings with more distinct values): length (characters) and token (whitespace word)
  statistics, length deciles and bin shares, and the `TOP_K` most frequent lower-cased tokens
  with an "other" count, computed on the first `TEXT_SAMPLE` values of that sample.

The sample is Bernoulli with rate min(1, SAMPLE / rows) from a fixed seed, so a profile is
reproducible. Other types (dates, timestamps, nested values) get the common fields only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from charter.data.tabular import TableInfo

SAMPLE = 200_000
TEXT_SAMPLE = 50_000  # text statistics: the first TEXT_SAMPLE values of the uniform sample
KMV = 1024
CATEGORY_MAX = 1000
TOP_K = 50
HIST_BINS = 20
OTHER = "__other__"
_NUMBER = {"integer", "float", "decimal"}
_STRINGISH = {"string", "boolean"}


def profile_table(root: Path, info: TableInfo, *, seed: int = 0) -> dict[str, Any]:
    """The profile of a table snapshot taken from `root` (see the module docstring)."""
    from charter.data.scan import scan_table

    profile = scan_table(root, info, seed=seed, fingerprints=False).profile
    assert profile is not None
    return profile


def profile_batches(
    batches: Iterable[pa.RecordBatch], schema: dict[str, str], *, seed: int = 0
) -> dict[str, Any]:
    """The profile of in-memory record batches (production inputs), same shape as `profile_table`.

    To profile batches streamed from elsewhere without holding them all, feed them to a
    `charter.data.scan.TableScanner` (it needs the row count up front for the sample rate)."""
    from charter.data.scan import TableScanner

    batches = list(batches)
    rows = sum(b.num_rows for b in batches)
    with TableScanner(schema, rows=rows, seed=seed, fingerprints=False) as scanner:
        for batch in batches:
            scanner.add(batch)
        return scanner.profile()


def column_kind(summary: dict[str, Any]) -> str:
    """'number', 'category', 'text' or 'other' for a column summary."""
    return str(summary.get("kind", "other"))


class ColumnProfile:
    """Accumulates one column's summary over record batches, in row order."""

    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind
        self.count = self.nulls = 0
        self.kmv = np.empty(0, dtype=np.uint64)
        self.total = self.squares = 0.0
        self.low, self.high = math.inf, -math.inf
        self.sample: list[Any] = []
        self.counts: Counter[str] | None = Counter() if kind in _STRINGISH else None
        self.overflow = False  # more than CATEGORY_MAX distinct values: a text column, not a category
        self.sampled = 0

    def add(self, array: pa.Array, pick: np.ndarray | None, hashes: np.ndarray | None = None) -> None:
        """Take in one chunk of the column; `pick` are the positions sampled from it, `hashes` its
        values' fingerprint hashes when the caller has them (`column_hashes`, nulls included)."""
        from charter.data.fingerprints import column_hashes

        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        self.count += len(array)
        self.nulls += array.null_count
        valid = array.drop_null() if array.null_count else array
        if len(valid):
            if hashes is None:
                hashes = column_hashes(valid)
            elif array.null_count:
                hashes = hashes[array.is_valid().to_numpy(zero_copy_only=False)]
            self._remember(hashes)
        if self.kind in _NUMBER and len(valid):
            x = pc.cast(valid, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            x = x[np.isfinite(x)]
            if len(x):
                self.total += float(x.sum())
                self.squares += float(np.square(x).sum())
                self.low, self.high = min(self.low, float(x.min())), max(self.high, float(x.max()))
            sampled = array if pick is None else array.take(pa.array(pick, type=pa.int64()))
            s = pc.cast(sampled.drop_null(), pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            self.sample.append(s[np.isfinite(s)])
        elif self.counts is not None:
            if not self.overflow and len(valid):
                self._count(valid)
            if self.kind == "string" and self.sampled < TEXT_SAMPLE:
                sampled = array if pick is None else array.take(pa.array(pick, type=pa.int64()))
                texts = pc.cast(sampled.drop_null(), pa.large_string())[: TEXT_SAMPLE - self.sampled]
                self.sampled += len(texts)
                self.sample.append(texts)

    def _remember(self, hashes: np.ndarray) -> None:
        """Keep the KMV smallest distinct hashes seen so far."""
        if len(self.kmv) == KMV:  # only hashes below the current k-th smallest can enter
            hashes = hashes[hashes < self.kmv[-1]]
        self.kmv = sorted_unique(np.concatenate([self.kmv, hashes]))[:KMV]

    def _count(self, valid: pa.Array) -> None:
        """Count the values exactly while there are at most CATEGORY_MAX distinct ones."""
        vc = pc.value_counts(pc.cast(valid, pa.string()) if self.kind == "boolean" else valid)
        if len(vc) > CATEGORY_MAX:  # more distinct values in this chunk alone: not a category
            self.overflow = True
            return
        counts = self.counts if self.counts is not None else Counter()
        for value, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
            counts[value] += n
        self.counts = counts
        self.overflow = len(counts) > CATEGORY_MAX

    def distinct(self) -> int:
        if len(self.kmv) < KMV:
            return len(self.kmv)
        return round((KMV - 1) / (float(self.kmv[-1]) / 2.0**64))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "distinct": self.distinct(),
            "kind": "other",
        }
        present = self.count - self.nulls
        if self.kind in _NUMBER:
            out["kind"] = "number"
            sample = np.concatenate(self.sample) if self.sample else np.empty(0)
            out.update(_numbers(sample, present, self.total, self.squares, self.low, self.high))
        elif self.counts is not None and not self.overflow:
            out["kind"] = "category"
            out.update(top_k(self.counts))
        elif self.kind == "string":
            out["kind"] = "text"
            texts = pa.concat_arrays(self.sample) if self.sample else pa.array([], pa.large_string())
            out.update(_texts(texts))
        return out


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending (np.unique without its hash table: much faster here)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def top_k(counts: Counter[str], k: int = TOP_K) -> dict[str, Any]:
    """The k most frequent values (ties by value) and the count of all others."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    top = ranked[:k]
    return {"top": [[value, n] for value, n in top], "other": sum(n for _, n in ranked[k:])}


def decile_edges(sample: np.ndarray) -> list[float]:
    """The distinct inner decile edges (10th … 90th percentile) of a sample."""
    if len(sample) == 0:
        return []
    return sorted({float(v) for v in np.quantile(sample, np.linspace(0.1, 0.9, 9))})


def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares of `values` in the bins (-inf, e1], (e1, e2], …, (ek, inf)."""
    if len(values) == 0:
        return [0.0] * (len(edges) + 1)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return [float(c) / len(values) for c in counts]


def _numbers(
    sample: np.ndarray, present: int, total: float, squares: float, low: float, high: float
) -> dict[str, Any]:
    if present == 0 or not math.isfinite(low):
        return {"min": None, "max": None, "mean": None, "std": None, "deciles": [], "bins": [1.0]}
    mean = total / present
    std = math.sqrt(max(squares / present - mean * mean, 0.0))
    edges = decile_edges(sample)
    hist_edges = np.linspace(low, high if high > low else low + 1.0, HIST_BINS + 1)
    hist, _ = np.histogram(np.clip(sample, low, high), bins=hist_edges)
    scale = present / max(len(sample), 1)
    return {
        "min": low,
        "max": high,
        "mean": mean,
        "std": std,
        "deciles": edges,
        "bins": bin_shares(sample, edges),
        "percentiles": [float(v) for v in np.quantile(sample, np.linspace(0, 1, 101))] if len(sample) else [],
        "sample_size": len(sample),
        "histogram": {
            "edges": [float(e) for e in hist_edges],
            "counts": [round(c * scale) for c in hist],
        },
    }


def text_lengths(texts: pa.Array) -> np.ndarray:
    return np.asarray(pc.utf8_length(texts).to_numpy(zero_copy_only=False), dtype=np.float64)


def token_counts(texts: pa.Array) -> tuple[np.ndarray, Counter[str]]:
    """Whitespace tokens per text and the frequency of each lower-cased token."""
    tokens = pc.utf8_split_whitespace(pc.utf8_lower(texts))
    per_text = np.asarray(pc.list_value_length(tokens).to_numpy(zero_copy_only=False), dtype=np.float64)
    flat = pc.list_flatten(tokens)
    vocabulary: Counter[str] = Counter()
    if len(flat):
        vc = pc.value_counts(flat)
        vocabulary.update(
            dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))
        )
    vocabulary.pop("", None)
    return per_text, vocabulary


def _texts(texts: pa.Array) -> dict[str, Any]:
    lengths = text_lengths(texts)
    tokens, vocabulary = token_counts(texts)
    edges = decile_edges(lengths)
    return {
        "sample_size": len(texts),
        "length": _stats(lengths),
        "tokens": _stats(tokens),
        "length_deciles": edges,
        "length_bins": bin_shares(lengths, edges),
        "vocabulary": top_k(vocabulary),
    }


def _stats(x: np.ndarray) -> dict[str, float | None]:
    if len(x) == 0:
        return {"min": None, "max": None, "mean": None, "p50": None}
    return {
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": float(x.mean()),
        "p50": float(np.median(x)),
    }

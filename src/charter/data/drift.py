"""Drift of production inputs against a training version's stored profile (`charter.data.profile`).

The training data is not re-read: every statistic compares the stored profile's summary with the
production rows, column by column, by the column's kind in the training profile.

- number: PSI over the training decile bins (−∞, d1], (d1, d2], …, (d9, ∞); the KS statistic
  D = sup |F_prod(x) − F_train(x)|, F_train interpolated linearly between the stored percentiles,
  with the asymptotic p-value P(K > D·sqrt(n·m/(n+m))) (n: training sample size, m: production
  rows);
- category: PSI over the training top values plus "other" (a value unseen in training falls into
  "other"); Pearson's chi-square of the production counts against the training shares
  (df = bins − 1); the Jensen–Shannon distance, base 2 (0 identical, 1 disjoint);
- text: PSI over the training length deciles, and PSI and Jensen–Shannon over the training
  vocabulary (top tokens plus "other"; production tokens counted on a seeded sample of at most
  50 000 texts); chi-square on the length bins.

PSI = Σ (a_i − e_i) · ln(a_i / e_i) over bins, with e the training share and a the production
share, both smoothed as (s + ε) / (1 + k·ε), ε = 1e-4, so empty bins stay finite. The verdict per
column comes from effect sizes, because at a million rows every p-value is "significant": PSI
below `psi_moderate` is none, below `psi_significant` moderate, else significant (text: the larger
of its two PSIs). The overall verdict is the worst column's. p-values are reported raw and
adjusted with Holm's step-down correction over all tests of the report (family-wise error rate).

Production inputs come from a `DriftSource`: anything with `describe()` and `read()` giving a
schema and record batches. `FileSource` reads a tabular file or a folder of them.
"""

from __future__ import annotations

import itertools
import math
import os
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from charter.data.profile import text_lengths, token_counts
from charter.data.scan import cores
from charter.data.tabular import TABULAR_SUFFIXES, UnreadableTable, merge_type, read_tables, table_format
from charter.errors import InvalidInput

EPSILON = 1e-4
VOCABULARY_SAMPLE = 50_000
VERDICTS = ("none", "moderate", "significant")


class DriftSource(Protocol):
    """Production inputs: a description and (schema name → canonical type, record batches)."""

    def describe(self) -> str: ...

    def read(self) -> tuple[dict[str, str], list[pa.RecordBatch]]: ...


@dataclass(frozen=True)
class FileSource:
    """A Parquet, CSV or JSON Lines file, or a folder of them sharing one schema."""

    path: Path

    def describe(self) -> str:
        return str(self.path)

    def read(self) -> tuple[dict[str, str], list[pa.RecordBatch]]:
        from charter.data.tabular import _read_schema, type_name

        files = _table_files(self.path)
        schema: dict[str, str] | None = None
        first = ""
        for location in files:
            if os.path.getsize(location) == 0:
                continue
            fields, _ = _read_schema(location, location.name)
            types = {f.name: type_name(f.type) for f in fields}
            if schema is None:
                schema, first = types, location.name
                continue
            if set(types) != set(schema):
                raise InvalidInput(
                    f"schema mismatch: {location.name} has columns {', '.join(sorted(types))} but {first} "
                    f"has {', '.join(sorted(schema))}; every production file needs the same columns"
                )
            for name, kind in types.items():
                both = merge_type(schema[name], kind)
                if both is None:
                    raise InvalidInput(
                        f"schema mismatch: column {name!r} is {kind} in {location.name} but "
                        f"{schema[name]} in {first}; every file needs compatible column types"
                    )
                schema[name] = both
        if not schema:
            raise InvalidInput(f"{self.path} has no rows; drift needs production rows to compare")
        batches = [
            batch
            for location in files
            for table in read_tables(location, location.name, sorted(schema))
            for batch in table.to_batches()
        ]
        if not sum(b.num_rows for b in batches):
            raise InvalidInput(f"{self.path} has no rows; drift needs production rows to compare")
        return schema, batches


def _table_files(path: Path) -> list[Path]:
    if not path.exists():
        raise InvalidInput(
            f"{path} does not exist; give a Parquet, CSV or JSON Lines file or a folder of them"
        )
    if path.is_file():
        if table_format(path.name) is None:
            raise UnreadableTable(path.name, "not a table file")
        return [path]
    found = sorted(p for p in path.rglob("*") if p.is_file() and table_format(p.name) is not None)
    if not found:
        raise InvalidInput(f"{path} holds no table files ({', '.join(TABULAR_SUFFIXES[:4])})")
    return found


# --- statistics ------------------------------------------------------------------------------


def smooth(shares: list[float] | np.ndarray) -> np.ndarray:
    s = np.asarray(shares, dtype=np.float64)
    return (s + EPSILON) / (1.0 + len(s) * EPSILON)


def psi(expected: list[float] | np.ndarray, actual: list[float] | np.ndarray) -> float:
    e, a = smooth(expected), smooth(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: list[float] | np.ndarray, actual: list[float] | np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    e, a = np.asarray(expected, float), np.asarray(actual, float)
    if e.sum() == 0 or a.sum() == 0:
        return 1.0
    return float(jensenshannon(e, a, base=2))


def chi_square(expected: list[float] | np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    from scipy.stats import chi2

    n = float(counts.sum())
    exp = smooth(expected) * n
    stat = float(np.sum((counts - exp) ** 2 / exp))
    df = max(len(counts) - 1, 1)
    return stat, float(chi2.sf(stat, df))


def ks(percentiles: list[float], sample_size: int, x: np.ndarray) -> tuple[float, float]:
    """KS statistic of x against the CDF interpolated from 101 stored percentiles, and its p-value."""
    return ks_sorted(percentiles, sample_size, np.sort(x))


def ks_sorted(percentiles: list[float], sample_size: int, xs: np.ndarray) -> tuple[float, float]:
    """`ks` of values already sorted ascending."""
    from scipy.stats import kstwobign

    if len(xs) == 0 or len(percentiles) < 2:
        return 0.0, 1.0
    grid = np.asarray(percentiles, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, len(grid))
    m = len(xs)
    f_train = np.interp(xs, grid, levels, left=0.0, right=1.0)
    # sup |F_prod − F_train| over the steps of F_prod: max(i/m − F, F − (i−1)/m); the two terms
    # add up to 1/m > 0, so the larger one is the absolute value of the other
    upper = np.arange(1, m + 1, dtype=np.float64)
    upper /= m
    lower = np.arange(0, m, dtype=np.float64)
    lower /= m
    d = max(float(np.max(upper - f_train)), float(np.max(f_train - lower)))
    n = max(sample_size, 1)
    en = math.sqrt(n * m / (n + m))
    return d, float(kstwobign.sf(en * d))


def sorted_shares(xs: np.ndarray, edges: list[float]) -> list[float]:
    """`charter.data.profile.bin_shares` of values already sorted ascending (no search per value)."""
    if len(xs) == 0:
        return [0.0] * (len(edges) + 1)
    at_or_below = np.searchsorted(xs, np.asarray(edges, dtype=np.float64), side="right")
    counts = np.diff(np.concatenate([[0], at_or_below, [len(xs)]]))
    return [float(c) / len(xs) for c in counts]


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    k = len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def verdict(value: float, moderate: float, significant: float) -> str:
    if value >= significant:
        return "significant"
    if value >= moderate:
        return "moderate"
    return "none"


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    verdict: str
    psi: float
    statistics: dict[str, float]
    p_values: dict[str, float]
    adjusted_p_values: dict[str, float]
    plot: dict[str, Any]  # labels, expected, actual: what the HTML report draws

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "verdict": self.verdict,
            "psi": self.psi,
            "statistics": self.statistics,
            "p_values": self.p_values,
            "adjusted_p_values": self.adjusted_p_values,
            "plot": self.plot,
        }


@dataclass(frozen=True)
class DriftReport:
    training: str
    against: str
    rows: int
    thresholds: dict[str, float]
    columns: tuple[ColumnDrift, ...]
    skipped: dict[str, str] = field(default_factory=dict)  # column → why it was not compared

    @property
    def verdict(self) -> str:
        worst = max((VERDICTS.index(c.verdict) for c in self.columns), default=0)
        return VERDICTS[worst]

    @property
    def drifted(self) -> list[str]:
        return [c.column for c in self.columns if c.verdict != "none"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "training": self.training,
            "against": self.against,
            "rows": self.rows,
            "verdict": self.verdict,
            "drifted": self.drifted,
            "thresholds": self.thresholds,
            "correction": "holm",
            "columns": [c.as_dict() for c in self.columns],
            "skipped": self.skipped,
        }


def compare(
    profile: Mapping[str, Any],
    schema: Mapping[str, str],
    batches: list[pa.RecordBatch],
    *,
    training: str,
    against: str,
    psi_moderate: float = 0.1,
    psi_significant: float = 0.25,
) -> DriftReport:
    """Per-column drift of the production batches against a stored training profile."""
    rows = sum(b.num_rows for b in batches)
    if rows == 0:
        raise InvalidInput(f"{against} has no rows; drift needs production rows to compare")
    stored = profile.get("columns", {})
    shared = [name for name in stored if name in schema]
    if not shared:
        raise InvalidInput(
            f"{against} shares no column with {training} (training columns: {', '.join(stored)}); "
            "compare production inputs with the training schema"
        )
    skipped = {name: "missing from the production inputs" for name in stored if name not in schema}

    def one(name: str) -> _Result | None:
        summary = stored[name]
        kind = summary.get("kind")
        if kind == "number":
            return _number(summary, _column(batches, name), name, schema[name])
        if kind == "category":
            return _category(summary, _column(batches, name))
        if kind == "text":
            return _text(summary, _column(batches, name), name, schema[name])
        return None

    with ThreadPoolExecutor(max_workers=cores(), thread_name_prefix="charter-drift") as pool:
        results = list(pool.map(one, shared))  # columns in parallel: numpy and pyarrow release the GIL
    raw: list[tuple[str, str, float, dict[str, float], dict[str, float], dict[str, Any]]] = []
    for name, result in zip(shared, results, strict=True):
        if result is None:
            skipped[name] = f"type {stored[name].get('type')} is not compared"
            continue
        raw.append((name, str(stored[name].get("kind")), *result))
    flat = [(i, key, p) for i, r in enumerate(raw) for key, p in r[4].items()]
    adjusted = holm([p for _, _, p in flat])
    per_column: list[dict[str, float]] = [{} for _ in raw]
    for (i, key, _), value in zip(flat, adjusted, strict=True):
        per_column[i][key] = value
    columns = tuple(
        ColumnDrift(
            name,
            kind,
            verdict(value, psi_moderate, psi_significant),
            value,
            stats,
            pvals,
            per_column[i],
            plot,
        )
        for i, (name, kind, value, stats, pvals, plot) in enumerate(raw)
    )
    thresholds = {"psi_moderate": psi_moderate, "psi_significant": psi_significant}
    return DriftReport(training, against, rows, thresholds, columns, skipped)


def _column(batches: list[pa.RecordBatch], name: str) -> pa.Array:
    chunks = [b.column(name) for b in batches]
    return pa.chunked_array(chunks).combine_chunks() if chunks else pa.array([])


def _numbers(array: pa.Array, name: str, kind: str) -> np.ndarray:
    if kind not in ("integer", "float", "decimal", "null"):
        raise InvalidInput(
            f"column {name!r} is numeric in training but {kind} in the production inputs; "
            "production inputs need the training types"
        )
    x = np.asarray(pc.cast(array.drop_null(), pa.float64(), safe=False).to_numpy(zero_copy_only=False))
    finite: np.ndarray = x[np.isfinite(x)]
    return finite


_Result = tuple[float, dict[str, float], dict[str, float], dict[str, Any]]


def _number(summary: Mapping[str, Any], array: pa.Array, name: str, kind: str) -> _Result:
    x = np.sort(_numbers(array, name, kind))  # sorted once: bin shares and KS both read it
    edges = list(summary.get("deciles") or [])
    expected = list(summary.get("bins") or [1.0])
    actual = sorted_shares(x, edges)
    value = psi(expected, actual)
    d, p = ks_sorted(summary.get("percentiles") or [], int(summary.get("sample_size") or 0), x)
    labels = _edge_labels(edges)
    plot = {"labels": labels, "expected": expected, "actual": actual}
    return value, {"psi": value, "ks": d}, {"ks": p}, plot


def _category(summary: Mapping[str, Any], array: pa.Array) -> _Result:
    top = [str(v) for v, _ in summary.get("top", [])]
    train_counts = np.array([n for _, n in summary.get("top", [])] + [summary.get("other", 0)], float)
    expected = train_counts / max(train_counts.sum(), 1.0)
    values = array.drop_null()
    if not (pa.types.is_dictionary(values.type) or pa.types.is_string(values.type)):
        values = pc.cast(values, pa.string())  # booleans: "true"/"false", as in the profile
    seen: Counter[str] = Counter()
    if len(values):
        vc = pc.value_counts(values)
        seen.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)))
    counts = np.array(
        [seen.get(v, 0) for v in top] + [sum(seen.values()) - sum(seen.get(v, 0) for v in top)], float
    )
    actual = counts / max(counts.sum(), 1.0)
    value = psi(expected, actual)
    stat, p = chi_square(expected, counts)
    js = js_distance(expected, actual)
    plot = {"labels": [*top, "other"], "expected": expected.tolist(), "actual": actual.tolist()}
    return value, {"psi": value, "chi_square": stat, "jensen_shannon": js}, {"chi_square": p}, plot


def _text(summary: Mapping[str, Any], array: pa.Array, name: str, kind: str) -> _Result:
    if kind != "string":
        raise InvalidInput(
            f"column {name!r} is text in training but {kind} in the production inputs; "
            "production inputs need the training types"
        )
    texts = pc.cast(array.drop_null(), pa.large_string())
    lengths = np.sort(text_lengths(texts))
    edges = list(summary.get("length_deciles") or [])
    expected = list(summary.get("length_bins") or [1.0])
    actual = sorted_shares(lengths, edges)
    length_psi = psi(expected, actual)
    _, vocabulary = token_counts(_sample(texts))
    top = [str(v) for v, _ in summary["vocabulary"]["top"]]
    train_vocab = np.array(
        [n for _, n in summary["vocabulary"]["top"]] + [summary["vocabulary"]["other"]], float
    )
    total = sum(vocabulary.values())
    prod_vocab = np.array(
        [vocabulary.get(t, 0) for t in top] + [total - sum(vocabulary.get(t, 0) for t in top)], float
    )
    e_vocab = train_vocab / max(train_vocab.sum(), 1.0)
    a_vocab = prod_vocab / max(prod_vocab.sum(), 1.0)
    vocab_psi = psi(e_vocab, a_vocab)
    stat, p = chi_square(expected, np.asarray(actual) * len(lengths))
    stats = {
        "psi": max(length_psi, vocab_psi),
        "length_psi": length_psi,
        "vocabulary_psi": vocab_psi,
        "vocabulary_jensen_shannon": js_distance(e_vocab, a_vocab),
        "length_chi_square": stat,
        "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
        "training_mean_length": float(summary.get("length", {}).get("mean") or 0.0),
    }
    plot = {"labels": _edge_labels(edges, "chars"), "expected": expected, "actual": actual}
    return max(length_psi, vocab_psi), stats, {"length_chi_square": p}, plot


def _sample(texts: pa.Array) -> pa.Array:
    """At most VOCABULARY_SAMPLE texts, a seeded uniform choice (tokenising is the costly part)."""
    if len(texts) <= VOCABULARY_SAMPLE:
        return texts
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(texts), VOCABULARY_SAMPLE, replace=False))
    return texts.take(pa.array(pick))


def _edge_labels(edges: list[float], unit: str = "") -> list[str]:
    suffix = f" {unit}" if unit else ""
    if not edges:
        return ["all"]
    labels = [f"≤ {edges[0]:.4g}{suffix}"]
    labels += [f"{lo:.4g}–{hi:.4g}{suffix}" for lo, hi in itertools.pairwise(edges)]
    return [*labels, f"> {edges[-1]:.4g}{suffix}"]

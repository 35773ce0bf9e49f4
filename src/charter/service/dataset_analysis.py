"""Dataset analysis beyond exact overlap: near-duplicate texts between versions, and the sources
of production inputs that drift compares with a training profile (pluggable by prefix)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.domain.refs import parse_dataset_ref
from charter.domain.roles import Action
from charter.errors import InvalidInput
from charter.service.access import authorize
from charter.storage.blobs import BlobStore
from charter.storage.datasets import DatasetVersionRecord

if TYPE_CHECKING:
    from charter.service.dataset_results import ExactOverlap
    from charter.service.registry import Registry


@dataclass(frozen=True)
class NearOverlap:
    """Exact overlap plus texts of A with a near-duplicate (Jaccard ≥ threshold) in B."""

    exact: ExactOverlap
    threshold: float
    columns: tuple[str, ...]
    a_rows: int
    near_rows: int  # rows of A with a near-duplicate in B in any of `columns`
    per_column: dict[str, dict[str, Any]]
    sample: tuple[dict[str, Any], ...]

    @property
    def ratio(self) -> float:
        return self.near_rows / self.a_rows if self.a_rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        from charter.data.minhash import describe

        return {
            "a": self.exact.a,
            "b": self.exact.b,
            "exact": self.exact.as_dict(),
            "near_duplicates": {
                **describe(self.threshold),
                "columns": list(self.columns),
                "a_rows": self.a_rows,
                "near_rows": self.near_rows,
                "ratio": self.ratio,
                "per_column": self.per_column,
                "sample": list(self.sample),
            },
        }


SAMPLE_PAIRS = 10


def near_between(
    blobs: BlobStore,
    a: DatasetVersionRecord,
    b: DatasetVersionRecord,
    exact: ExactOverlap,
    *,
    column: str | None,
    threshold: float,
) -> NearOverlap:
    """Near-duplicate overlap of A's text columns with B's (see `charter.data.minhash`)."""
    from charter.data.minhash import near_pairs

    columns = _text_columns(a, b, column)
    texts_a = _joined(_read_columns(blobs, a, columns), columns)
    texts_b = _joined(_read_columns(blobs, b, columns), columns)
    flagged: set[int] = set()
    per_column: dict[str, dict[str, Any]] = {}
    sample: list[dict[str, Any]] = []
    for name in texts_a:
        found = near_pairs(texts_a[name], texts_b[name], threshold)
        rows = found.a_rows()
        flagged |= rows
        per_column[name] = {"near_rows": len(rows), "pairs": len(found.pairs), "candidates": found.candidates}
        best = sorted(found.pairs, key=lambda p: (-p[2], p[0], p[1]))
        for i, j, score in best[: SAMPLE_PAIRS - len(sample)]:
            sample.append(
                {
                    "column": name,
                    "a_row": i,
                    "b_row": j,
                    "jaccard": round(score, 4),
                    "a_text": _clip(texts_a[name][i].as_py()),
                    "b_text": _clip(texts_b[name][j].as_py()),
                }
            )
    n_rows = a.row_count or 0
    return NearOverlap(exact, threshold, tuple(columns), n_rows, len(flagged), per_column, tuple(sample))


def _joined(texts: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """One text per row: a row is a near-duplicate as a whole, so several text columns are compared
    joined (in name order), never one by one — a short label shared by many rows would otherwise
    make every row a "near-duplicate"."""
    if len(columns) == 1:
        return texts
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = [pc.fill_null(texts[name], "") for name in columns]
    return {" + ".join(columns): pc.binary_join_element_wise(*parts, pa.scalar(" ", pa.large_string()))}


def _clip(text: Any, width: int = 160) -> str:
    value = str(text)
    return value if len(value) <= width else value[: width - 1] + "…"


def _text_columns(a: DatasetVersionRecord, b: DatasetVersionRecord, column: str | None) -> list[str]:
    if a.schema is None or b.schema is None:
        raise InvalidInput(
            f"near-duplicate overlap compares text columns of tables; {a.ref if a.schema is None else b.ref} "
            "is not a table (Parquet, CSV or JSON Lines with one schema)"
        )
    strings_a = {c["name"] for c in a.schema if c["type"] == "string"}
    strings_b = {c["name"] for c in b.schema if c["type"] == "string"}
    if column is not None:
        if column not in strings_a or column not in strings_b:
            raise InvalidInput(
                f"column {column!r} is not a text column of both {a.ref} and {b.ref}; text columns they "
                f"share: {', '.join(sorted(strings_a & strings_b)) or 'none'}",
                column=column,
            )
        return [column]
    kinds = (a.profile or {}).get("columns", {})
    shared = sorted(strings_a & strings_b)
    if not shared:
        raise InvalidInput(
            f"{a.ref} and {b.ref} share no text column; near-duplicate overlap compares text columns "
            "(exact overlap still works without --near)"
        )
    texts = [n for n in shared if kinds.get(n, {}).get("kind", "text") == "text"]
    return texts or shared


def _read_columns(blobs: BlobStore, record: DatasetVersionRecord, columns: list[str]) -> dict[str, Any]:
    """The named columns of a table version, in row order (read from a temporary checkout)."""
    import tempfile

    import pyarrow as pa

    from charter.data.tabular import file_location, read_tables
    from charter.service.dataset_lake import readable_copy

    with tempfile.TemporaryDirectory(prefix="charter-") as folder:
        root = Path(folder) / "data"
        paths = readable_copy(blobs, record, root)  # a lake version: its table at the pinned snapshot
        parts: dict[str, list[Any]] = {name: [] for name in columns}
        for path in paths:
            for table in read_tables(file_location(root, path), path, columns):
                for name in columns:
                    parts[name].extend(table.column(name).chunks)
        return {
            name: pa.concat_arrays([c.cast(pa.large_string()) for c in chunks])
            if chunks
            else pa.array([], type=pa.large_string())
            for name, chunks in parts.items()
        }


@dataclass(frozen=True)
class DatasetVersionSource:
    """Production inputs stored as a dataset version (read from a temporary checkout)."""

    blobs: BlobStore
    record: DatasetVersionRecord

    def describe(self) -> str:
        return self.record.ref

    def read(self) -> tuple[dict[str, str], builtins.list[Any]]:
        import tempfile

        from charter.data.drift import FileSource
        from charter.service.dataset_lake import readable_copy

        with tempfile.TemporaryDirectory(prefix="charter-") as folder:
            root = Path(folder) / "data"
            readable_copy(self.blobs, self.record, root)  # a lake version: its table at its snapshot
            return FileSource(root).read()


def _dataset_source(registry: Registry, text: str) -> Any:
    parsed = parse_dataset_ref(text)
    with registry.store.read() as tx:
        authorize(tx, registry.actor, Action.READ)
        return DatasetVersionSource(registry.store.blobs, tx.datasets.get_version(parsed))


def drift_source(registry: Registry, against: str | Path) -> Any:
    """The production inputs named by `against`: a registered prefix, an existing path, or DS@N."""
    from charter.data.drift import FileSource
    from charter.service.datasets import DRIFT_SOURCES

    text = str(against)
    for prefix, factory in DRIFT_SOURCES.items():
        if text.startswith(prefix):
            return factory(registry, text[len(prefix) :])
    if Path(text).exists():
        return FileSource(Path(text))
    if "@" in text:
        return _dataset_source(registry, text)
    raise InvalidInput(
        f"{text} is neither an existing file or folder nor a dataset version DS@N"
        + (f" nor a source prefixed {', '.join(DRIFT_SOURCES)}" if DRIFT_SOURCES else ""),
        against=text,
    )

"""One pass over a table that feeds its profile and its row fingerprints together.

A table snapshot is read once, in slices of at most `SCAN_ROWS` rows (a Parquet row group, cut if
larger). The next slice is read and decoded in a reader thread while the current one is worked
on, and the columns of a slice are worked on in parallel by a pool of threads — pyarrow and numpy
release the GIL for the bulk of the work, so the pool uses every core. Per column, the fingerprint
hash of each value (`charter.data.fingerprints.column_hashes`) is computed once: the row
fingerprints fold the columns' hashes in column-name order, and the profile's distinct-count
sketch takes the same hashes. The profile's sample is drawn in row order from the seeded
generator of `charter.data.profile`, so the results do not depend on the slicing or the threads.

`TableScanner` is the streaming entry point: feed it record batches (or tables) in row order,
then ask for the profile and the sorted fingerprints. `scan_table` runs it over a snapshot's files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from charter.data.fingerprints import RowHasher
from charter.data.hashing import U64
from charter.data.profile import ColumnProfile
from charter.data.tabular import TableInfo, file_location, read_tables

SCAN_ROWS = 1 << 16  # rows worked on at once: big enough for numpy, small enough for the caches


@dataclass(frozen=True)
class TableScan:
    """What one pass produced: the profile and/or the sorted row fingerprints (duplicates kept)."""

    profile: dict[str, Any] | None
    fingerprints: U64 | None


class TableScanner:
    """Profile and fingerprint rows fed in order, record batch by record batch.

    `schema` maps column names to canonical types (`charter.data.tabular.type_name`); the profile
    lists the columns in that order, the fingerprints fold them in name order (as
    `fingerprint_batch` does). `rows` is the total row count to come: it sets the profile's sample
    rate (0 when unknown: then every row is sampled). Use it as a context manager, or call `close`.
    """

    def __init__(
        self,
        schema: dict[str, str],
        *,
        rows: int,
        seed: int = 0,
        profile: bool = True,
        fingerprints: bool = True,
        workers: int | None = None,
    ) -> None:
        from charter.data import profile as profiles

        self.names = list(schema)
        self.rows = rows
        self.rate = min(1.0, profiles.SAMPLE / rows) if rows else 1.0
        self.rng = np.random.default_rng(seed)
        self.columns = {name: ColumnProfile(name, kind) for name, kind in schema.items()} if profile else None
        self.hasher = RowHasher(sorted(self.names))
        self.parts: list[U64] | None = [] if fingerprints else None
        self.pool = ThreadPoolExecutor(max_workers=workers or cores(), thread_name_prefix="charter-scan")
        self.seen = 0

    def __enter__(self) -> TableScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Take in the next rows (in order); a table is taken chunk by chunk."""
        if isinstance(batch, pa.Table):
            for part in batch.to_batches(max_chunksize=SCAN_ROWS):
                self.add(part)
            return
        n = batch.num_rows
        self.seen += n
        pick = None
        if self.columns is not None and self.rate < 1.0:
            pick = np.flatnonzero(self.rng.random(n) < self.rate)
        columns = self.columns

        def one(name: str) -> U64:
            array = batch.column(name)
            hashes = self.hasher.column(name, array)
            if columns is not None:
                columns[name].add(array, pick, hashes)
            return hashes

        hashes = dict(zip(self.names, self.pool.map(one, self.names), strict=True))
        if self.parts is not None:
            self.parts.append(self.hasher.combine([hashes[name] for name in self.hasher.columns], n))

    def profile(self) -> dict[str, Any]:
        """The profile of the rows taken in (`charter.data.profile`'s shape)."""
        if self.columns is None:
            raise ValueError("this scanner was made without a profile")
        columns = self.columns
        summaries = list(self.pool.map(lambda name: columns[name].summary(), self.names))
        return {
            "rows": self.rows or self.seen,
            "sample_rate": self.rate,
            "columns": dict(zip(self.names, summaries, strict=True)),
        }

    def fingerprints(self) -> U64:
        """Sorted fingerprints of the rows taken in (duplicates kept)."""
        if self.parts is None:
            raise ValueError("this scanner was made without fingerprints")
        fps = np.concatenate(self.parts) if self.parts else np.empty(0, dtype=np.uint64)
        fps.sort()
        return fps


def scan_table(
    root: Path,
    info: TableInfo,
    *,
    seed: int = 0,
    profile: bool = True,
    fingerprints: bool = True,
    workers: int | None = None,
) -> TableScan:
    """Profile and/or fingerprints of a table snapshot taken from `root`, in one read."""
    schema = {column["name"]: column["type"] for column in info.schema}
    with TableScanner(
        schema, rows=info.row_count, seed=seed, profile=profile, fingerprints=fingerprints, workers=workers
    ) as scanner:
        for table in _read_ahead(_tables(root, info)):
            scanner.add(table)
        return TableScan(
            scanner.profile() if profile else None, scanner.fingerprints() if fingerprints else None
        )


def _tables(root: Path, info: TableInfo) -> Iterator[pa.Table]:
    for path in info.files:
        yield from read_tables(file_location(root, path), path, info.columns)


def _read_ahead(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """The same tables, the next one read in a thread while the caller works on the current one."""
    iterator = iter(tables)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="charter-read") as reader:
        pending: Future[pa.Table | None] = reader.submit(next, iterator, None)
        while True:
            table = pending.result()
            if table is None:
                return
            pending = reader.submit(next, iterator, None)
            yield table


def cores() -> int:
    """How many threads the dataset engine works with: the cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1

"""Lake tables by reference: registering and checking out Iceberg and Delta snapshots.

    python -m bench.bench_lake [--quick]

The same seeded rows (1M × 6 columns: 3 numeric, 1 categorical, 2 short texts; quick: 50k) are
written as a Delta table, an Iceberg table (SQL catalog on SQLite, local warehouse) and one Parquet
file, under `bench/.work/lake`. Measured in one run, medians of `RUNS` each, on a fresh embedded
store per run:

- `dataset add` of the Parquet file (the baseline: snapshot + fingerprints + profile);
- `dataset add --delta` and `--iceberg` (one scan: spool to Parquet + fingerprints, then profile);
- `dataset checkout` of the file version (the baseline) and of each lake version (time travel,
  write Parquet, verify rows and fingerprints).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from charter.service.registry import Registry

RUNS = 3


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    from charter.config import Settings
    from charter.service.setup import init_store, open_registry

    rows = 50_000 if quick else 1_000_000
    folder = workdir / "lake"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    table = _rows(rows)
    pq.write_table(table, folder / "table.parquet")
    delta = _delta(folder, table)
    iceberg = _iceberg(folder, table)

    timings: dict[str, list[float]] = {}
    for attempt in range(RUNS):
        settings = Settings.for_home(folder / f"store-{attempt}", user="bench")
        init_store(settings)
        with open_registry(settings) as reg:
            for name, seconds in _one_run(reg, folder, folder / f"out-{attempt}", delta, iceberg).items():
                timings.setdefault(name, []).append(seconds)
    base_add = statistics.median(timings["add parquet file"])
    base_checkout = statistics.median(timings["checkout file version"])
    results = []
    for name, values in timings.items():
        median = statistics.median(values)
        baseline = base_add if name.startswith("add") else base_checkout
        results.append(
            {
                "name": f"lake: {name} ({rows:,} rows × 6 columns)",
                "median_s": median,
                "runs": len(values),
                "rows_per_s": rows / median,
                "vs_file_baseline": median / baseline,
            }
        )
    return results


def _one_run(reg: Registry, folder: Path, out: Path, delta: Path, iceberg: str) -> dict[str, float]:
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("add parquet file", lambda: reg.datasets.add("file", folder / "table.parquet", role="train")),
        ("add --delta", lambda: reg.datasets.add_table("d", delta=str(delta), role="train")),
        ("add --iceberg", lambda: reg.datasets.add_table("i", iceberg=iceberg, role="train")),
        ("checkout file version", lambda: reg.datasets.checkout("file@1", out / "file")),
        ("checkout delta version", lambda: reg.datasets.checkout("d@1", out / "delta")),
        ("checkout iceberg version", lambda: reg.datasets.checkout("i@1", out / "iceberg")),
    ]
    seconds = {}
    for name, call in cases:
        started = time.perf_counter()
        call()
        seconds[name] = time.perf_counter() - started
    return seconds


def _rows(n: int) -> pa.Table:
    rng = np.random.default_rng(3)
    words = np.array([f"w{i}" for i in range(5000)])
    return pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "amount": pa.array(rng.normal(100, 15, n)),
            "count": pa.array(rng.integers(0, 1000, n)),
            "country": pa.array(np.array(["de", "fr", "us", "jp", "br"])[rng.integers(0, 5, n)]),
            "title": pa.array([" ".join(w) for w in words[rng.integers(0, len(words), (n, 4))]]),
            "sku": pa.array([f"sku-{v}" for v in rng.integers(0, 10**9, n)]),
        }
    )


def _delta(folder: Path, table: pa.Table) -> Path:
    from deltalake import write_deltalake

    path = folder / "delta"
    write_deltalake(str(path), table)
    return path


def _iceberg(folder: Path, table: pa.Table) -> str:
    from pyiceberg.catalog.sql import SqlCatalog

    warehouse = folder / "warehouse"
    warehouse.mkdir()
    uri = f"sqlite:///{folder / 'catalog.db'}"
    catalog = SqlCatalog("default", uri=uri, warehouse=f"file://{warehouse}")
    catalog.create_namespace("bench")
    catalog.create_table("bench.rows", schema=table.schema).append(table)
    return f"{uri}#bench.rows"


if __name__ == "__main__":
    import json

    quick = "--quick" in sys.argv
    print(json.dumps(run(Path(__file__).parent / ".work", quick), indent=2))

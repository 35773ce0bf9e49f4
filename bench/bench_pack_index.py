"""The packs' in-memory index: memory per object, load time and lookup time, against dictionaries.

    .venv/bin/python -m bench.bench_pack_index [--quick]

A folder of packs holding N objects (default 2,000,000; `--quick` 100,000) in packs of 50,000
(the count a 128 MiB pack holds of small chunks is lower; more packs only make the load merge more
runs) is indexed two ways in the same process:

- `PackSet`, as the store uses it: every index file read, checked and merged into one
  `Locations` (numpy arrays);
- the layout it replaced, rebuilt here as the baseline: each index decoded into a dictionary of
  hex digest → (offset, length) and merged into one dictionary of digest → (pack, offset, length).

Measured: Python heap allocated while loading (tracemalloc, which sees numpy's buffers too), load
time, and the median time of `locate` for stored and for absent digests.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

PER_PACK = 50_000


def _write_packs(folder: Path, count: int) -> list[str]:
    from charter.storage.packs import INDEX_SUFFIX, PACK_MAGIC, PACK_SUFFIX, encode_index

    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    digests: list[str] = []
    for start in range(0, count, PER_PACK):
        n = min(PER_PACK, count - start)
        raw = rng.bytes(32 * n)
        chunk = [raw[i : i + 32].hex() for i in range(0, len(raw), 32)]
        digests.extend(chunk)
        entries = {digest: (16 + 4096 * i, 4096) for i, digest in enumerate(chunk)}
        name = f"pack-{start // PER_PACK:06d}"
        (folder / f"{name}{PACK_SUFFIX}").write_bytes(PACK_MAGIC)
        (folder / f"{name}{INDEX_SUFFIX}").write_bytes(encode_index(entries))
    return digests


def _dicts(folder: Path) -> dict[str, tuple[str, int, int]]:
    """The layout before: a dictionary per pack, merged into one dictionary."""
    from charter.storage.packs import INDEX_SUFFIX, decode_index

    where: dict[str, tuple[str, int, int]] = {}
    for path in sorted(folder.glob(f"*{INDEX_SUFFIX}")):
        entries = dict(decode_index(path.read_bytes()).items())
        for digest, (offset, length) in entries.items():
            where.setdefault(digest, (path.stem, offset, length))
    return where


def _measure(build: Any) -> tuple[Any, float, int]:
    gc.collect()
    tracemalloc.start()
    began = time.perf_counter()
    value = build()
    seconds = time.perf_counter() - began
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return value, seconds, held


def _lookups(locate: Any, digests: list[str]) -> float:
    samples = []
    for start in range(0, len(digests), 1000):
        batch = digests[start : start + 1000]
        began = time.perf_counter_ns()
        for digest in batch:
            locate(digest)
        samples.append((time.perf_counter_ns() - began) / len(batch) / 1000)
    return statistics.median(samples)


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    from charter.storage.packs import PackSet

    count = 100_000 if quick else 2_000_000
    folder = workdir / "pack-index"
    if folder.exists():
        shutil.rmtree(folder)
    digests = _write_packs(folder, count)
    rng = np.random.default_rng(3)
    stored = [digests[i] for i in rng.integers(0, count, 20_000)]
    absent = [rng.bytes(32).hex() for _ in range(20_000)]
    rows = []
    packs = PackSet(folder)
    _, seconds, held = _measure(lambda: packs.refresh(force=True))
    rows.append({
        "name": f"pack index: numpy arrays, {count:,} objects in {len(packs.packs())} packs",
        "bytes_per_object": round(held / count, 1), "load_s": round(seconds, 3),
        "locate_stored_us": round(_lookups(packs.locate, stored), 2),
        "locate_absent_us": round(_lookups(packs.locate, absent), 2),
    })  # fmt: skip
    assert all(packs.locate(d) is not None for d in stored) and all(packs.locate(d) is None for d in absent)
    packs.refresh(force=False)
    where, seconds, held = _measure(lambda: _dicts(folder))
    rows.append({
        "name": f"pack index: dictionaries (the layout before), {count:,} objects",
        "bytes_per_object": round(held / count, 1), "load_s": round(seconds, 3),
        "locate_stored_us": round(_lookups(where.get, stored), 2),
        "locate_absent_us": round(_lookups(where.get, absent), 2),
    })  # fmt: skip
    shutil.rmtree(folder)
    return rows


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    workdir = Path(os.environ.get("CHARTER_BENCH_WORK", "bench/.work"))
    for row in run(workdir, quick):
        print(row)

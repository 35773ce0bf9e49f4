"""The dataset engine: snapshots, fingerprints and overlap, beside `dvc add` of the same inputs.

    python -m bench.bench_data [--quick]

Measured (median of several runs, inputs in the page cache):

- snapshot of a 1 GiB random file into an empty blob store, end to end (the commit that makes the
  packs durable included; the time before it and the commit itself are reported too), beside the
  same snapshot written as one loose file per blob (the layout before pack files) and `dd` writing
  1 GiB with and without `conv=fsync` into the same file system;
- snapshot after appending 1 MiB to that file (bytes newly stored);
- snapshot of 10,000 files of 4 KiB (packed, and loose as the baseline); checkout of the 1 GiB
  snapshot (verified);
- canonical fingerprints of a 10-column Parquet file (2M rows: 3 integer, 3 float, 2 low- and 2
  high-cardinality string columns), in rows/s;
- `rows_found` on two sorted 10M-row fingerprint arrays.

DVC is installed into its own virtualenv (`bench/.work/dvc-venv`, never a project dependency) and
runs `dvc add` on the same inputs in scratch git repositories (`git init` + `dvc init`, not timed),
in the same run; its times include starting the `dvc` command. `--quick` uses small inputs and skips
DVC. Inputs and stores live under `bench/.work/data` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from charter.data.chunking import AVG_CHUNK, MAX_CHUNK, MIN_CHUNK, chunk_spans, content_digest, new_chunker
from charter.data.fingerprints import fingerprint_table
from charter.data.manifest import FileEntry, Manifest
from charter.data.overlap import rows_found
from charter.data.snapshot import checkout, snapshot
from charter.data.tabular import inspect_table
from charter.storage.blobs import LocalBlobStore, LooseWriter
from charter.storage.packs import PackInfo, PackWriter

MiB = 1024 * 1024
GiB = 1024 * MiB
DVC_REQUIREMENT = "dvc"


class _TimedStore(LocalBlobStore):
    """A blob store that remembers how long committing its (one) batch took: the fsync of the packs
    still open, writing their indexes, the renames and the folder's fsync."""

    sync_s = 0.0

    def writer(self, *, dedup: bool = True) -> PackWriter:
        store = self

        class Timed(PackWriter):
            def commit(self) -> list[PackInfo]:
                started = time.perf_counter()
                try:
                    return super().commit()
                finally:
                    store.sync_s = time.perf_counter() - started

        return Timed(
            self.packs,
            self.tmp,
            dedup=dedup,
            loose=self._loose_exists,
            sync_loose=self.sync,
            direct=self.direct_io,
        )


class _Discard:
    """A batch writer that stores nothing: what a snapshot costs without writing (read, cut, hash)."""

    def put_many(self, items: Any) -> list[bool]:
        return [True for _ in items]

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _DiscardStore(_TimedStore):
    def writer(self, *, dedup: bool = True) -> PackWriter:
        return _Discard()  # type: ignore[return-value]


class _LooseStore(_TimedStore):
    """The baseline: one file per blob and one `os.sync()` per snapshot (the layout before packs)."""

    def writer(self, *, dedup: bool = True) -> PackWriter:
        return LooseWriter(self)  # type: ignore[return-value]

    def sync(self) -> None:
        started = time.perf_counter()
        super().sync()
        self.sync_s = time.perf_counter() - started


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    sizes = _Sizes(quick)
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    inputs = _Inputs(data, sizes)
    try:
        rows = [
            _big_file(inputs, sizes),
            _append(inputs, sizes),
            _small_files(inputs, sizes),
            _checkout(inputs, sizes),
            _fingerprints(inputs, sizes),
            _overlap(sizes),
            _dd(inputs, sizes),
        ]
        if not quick:
            _beside_dvc(rows, inputs, workdir)
    finally:
        shutil.rmtree(inputs.stores, ignore_errors=True)  # the inputs stay, for the next run
    return rows


class _Sizes:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.big = 32 * MiB if quick else GiB
        self.append = MiB
        self.small_files = 500 if quick else 10_000
        self.small_size = 4096
        self.table_rows = 50_000 if quick else 2_000_000
        self.fingerprints = 200_000 if quick else 10_000_000
        self.runs = 3  # the 1 GiB and 10,000-file scenarios: each run writes a fresh store
        self.cheap_runs = 5  # fingerprints and overlap


class _Inputs:
    """The generated inputs, made once and reused (their content is fixed by seeds)."""

    def __init__(self, data: Path, sizes: _Sizes) -> None:
        self.data = data
        self.big = data / f"big-{sizes.big // MiB}MiB.bin"
        if not self.big.exists() or self.big.stat().st_size != sizes.big:
            _write_random(self.big, sizes.big, seed=1)
        self.small = data / f"small-{sizes.small_files}"
        if not self.small.is_dir() or len(list(self.small.iterdir())) != sizes.small_files:
            shutil.rmtree(self.small, ignore_errors=True)
            self.small.mkdir()
            rng = np.random.default_rng(2)
            for i in range(sizes.small_files):
                (self.small / f"file-{i:05d}.bin").write_bytes(rng.bytes(sizes.small_size))
        self.table = data / f"table-{sizes.table_rows}.parquet"
        if not self.table.exists():
            _write_table(self.table, sizes.table_rows)
        self.stores = data / "stores"
        shutil.rmtree(self.stores, ignore_errors=True)
        self.stores.mkdir()

    def store(self, name: str, *, loose: bool = False, discard: bool = False) -> _TimedStore:
        path = self.stores / name
        shutil.rmtree(path, ignore_errors=True)
        store = _LooseStore(path) if loose else _DiscardStore(path) if discard else _TimedStore(path)
        store.create()
        return store


def _write_random(path: Path, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "wb") as handle:
        left = size
        while left:
            block = min(left, 64 * MiB)
            handle.write(rng.bytes(block))
            left -= block


def _write_table(path: Path, n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    columns: dict[str, Any] = {}
    for i in range(3):
        columns[f"count_{i}"] = rng.integers(-(10**9), 10**9, n)
    for i in range(3):
        columns[f"score_{i}"] = rng.normal(size=n).round(2 + 2 * i)
    levels = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    columns["label"] = pa.array(levels[rng.integers(0, len(levels), n)])
    countries = np.array([f"country-{i:03d}" for i in range(200)])
    columns["country"] = pa.array(countries[rng.integers(0, len(countries), n)])
    columns["user_id"] = pa.array(
        np.char.add("user-", np.char.zfill(rng.integers(0, 10**12, n).astype(str), 12))
    )
    columns["session"] = pa.array(np.char.mod("%x", rng.integers(0, 2**40, n)))
    pq.write_table(pa.table(columns), path)


def _warm(path: Path) -> None:
    """Read a file or folder once so that it is in the page cache."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        with open(file, "rb", buffering=0) as handle:
            while handle.read(16 * MiB):
                pass


def _measure(
    runs: int, prepare: Callable[[], Any], body: Callable[[Any], Any]
) -> tuple[list[float], list[float], Any]:
    """Run `body(prepare())` `runs` times: wall seconds, CPU seconds of this process, last result."""
    walls, cpus = [], []
    result = None
    for _ in range(runs):
        arg = prepare()
        cpu, wall = time.process_time(), time.perf_counter()
        result = body(arg)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, result


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


# --- charter -----------------------------------------------------------------------------------


def _big_file(inputs: _Inputs, sizes: _Sizes) -> dict[str, Any]:
    _warm(inputs.big)
    load = _load()
    packed = _snapshots(inputs, sizes, inputs.big, loose=False)
    loose = _snapshots(inputs, sizes, inputs.big, loose=True)
    unwritten = _snapshots(inputs, sizes, inputs.big, loose=False, discard=True)
    floor = _store_floor(inputs, sizes.runs, [inputs.big])
    median = packed["median_s"]
    return {
        "name": f"data: snapshot of a {_size(sizes.big)} random file into an empty store",
        "median_s": median,
        "runs": sizes.runs,
        "gb_per_s": sizes.big / median / 1e9,
        "median_before_commit_s": packed["before_s"],
        "gb_per_s_before_commit": sizes.big / packed["before_s"] / 1e9,
        "median_commit_s": packed["commit_s"],
        "cpu_s": packed["cpu_s"],
        "chunks": packed["result"].chunks_total,
        "bytes_new": packed["result"].bytes_new,
        "store_put_floor_s": floor,
        "no_write_median_s": unwritten["median_s"],
        "no_write_cpu_s": unwritten["cpu_s"],
        "loose_median_s": loose["median_s"],
        "loose_sync_s": loose["commit_s"],
        "loose_over_packed": loose["median_s"] / median,
        "target": "≥ 1 GB/s end to end",
        "load_avg_1m_5m": load,
        "notes": "end to end includes the commit that makes the packs durable (fdatasync of each pack, "
        "its index, renames, fsync of packs/); loose_*: the same snapshot as one file per blob and one "
        "os.sync(), in the same run; store_put_floor_s: the pack writer alone on the same chunks "
        "(no reading or hashing; commit included); no_write_*: the snapshot with a writer that discards "
        "every chunk (reading, cutting and hashing only); "
        f"chunks: min {MIN_CHUNK // 1024} KiB, avg {AVG_CHUNK // 1024} KiB, max {MAX_CHUNK // 1024} KiB",
    }


def _snapshots(
    inputs: _Inputs, sizes: _Sizes, source: Path, *, loose: bool, discard: bool = False
) -> dict[str, Any]:
    """Medians of `sizes.runs` snapshots of `source` into fresh stores, packed or loose."""
    stores: list[_TimedStore] = []

    def fresh() -> _TimedStore:
        stores.append(inputs.store("loose" if loose else "packed", loose=loose, discard=discard))
        os.sync()  # start each run with no dirty pages of earlier runs
        return stores[-1]

    walls, cpus, result = _measure(sizes.runs, fresh, lambda store: snapshot(store, source))
    commits = [store.sync_s for store in stores]
    shutil.rmtree(stores[-1].root, ignore_errors=True)
    return {
        "median_s": statistics.median(walls),
        "before_s": statistics.median(w - c for w, c in zip(walls, commits, strict=True)),
        "commit_s": statistics.median(commits),
        "cpu_s": statistics.median(cpus),
        "result": result,
    }


def _store_floor(inputs: _Inputs, runs: int, files: list[Path]) -> float:
    """Median seconds of putting the chunks of `files` into an empty store, digests precomputed."""
    blobs: list[tuple[str, memoryview]] = []
    chunker = new_chunker()
    for path in files:
        data = memoryview(path.read_bytes())
        blobs.extend((content_digest(data[a:b]), data[a:b]) for a, b in chunk_spans(data, chunker))

    def fresh() -> _TimedStore:
        store = inputs.store("floor")
        os.sync()
        return store

    def put_all(store: _TimedStore) -> None:
        with store.writer() as writer:
            writer.put_many(blobs)

    walls, _, _ = _measure(runs, fresh, put_all)
    shutil.rmtree(inputs.stores / "floor", ignore_errors=True)
    return statistics.median(walls)


def _append(inputs: _Inputs, sizes: _Sizes) -> dict[str, Any]:
    appended = inputs.data / "appended.bin"
    shutil.copyfile(inputs.big, appended)
    with open(appended, "ab") as handle:
        handle.write(np.random.default_rng(4).bytes(sizes.append))
    store = inputs.store("append")
    snapshot(store, inputs.big)
    _warm(appended)
    load = _load()
    results = []

    def body(_: None) -> Any:
        result = snapshot(store, appended)
        results.append(result)
        # forget the new blobs so that every run stores them anew
        for digest in result.manifest.chunk_digests() | {result.manifest_digest}:
            if digest not in first_manifest_chunks:
                store.delete(digest)
        return result

    first_manifest_chunks = {digest for digest, _, _ in store.digests()}
    walls, cpus, result = _measure(sizes.runs, lambda: None, body)
    appended.unlink()
    median = statistics.median(walls)
    return {
        "name": f"data: snapshot after appending {_size(sizes.append)} to the {_size(sizes.big)} file",
        "median_s": median,
        "runs": sizes.runs,
        "gb_per_s": (sizes.big + sizes.append) / median / 1e9,
        "bytes_new": result.bytes_new,
        "bytes_new_chunks": result.bytes_new - len(result.manifest.to_bytes()),
        "chunks_new": result.chunks_new,
        "cpu_s": statistics.median(cpus),
        "target": "≤ 2 MiB newly stored",
        "load_avg_1m_5m": load,
        "notes": "bytes_new counts the new chunks and the new manifest blob",
    }


def _small_files(inputs: _Inputs, sizes: _Sizes) -> dict[str, Any]:
    _warm(inputs.small)
    load = _load()
    packed = _snapshots(inputs, sizes, inputs.small, loose=False)
    loose = _snapshots(inputs, sizes, inputs.small, loose=True)
    floor = _store_floor(inputs, sizes.runs, sorted(inputs.small.iterdir()))
    median = packed["median_s"]
    return {
        "name": f"data: snapshot of {sizes.small_files:,} files of {_size(sizes.small_size)}",
        "median_s": median,
        "runs": sizes.runs,
        "files_per_s": sizes.small_files / median,
        "mb_per_s": packed["result"].bytes_read / median / 1e6,
        "median_commit_s": packed["commit_s"],
        "cpu_s": packed["cpu_s"],
        "store_put_floor_s": floor,
        "loose_median_s": loose["median_s"],
        "loose_sync_s": loose["commit_s"],
        "loose_over_packed": loose["median_s"] / median,
        "target": "≤ 2 s for 10,000 files",
        "load_avg_1m_5m": load,
        "notes": "into an empty store, commit (durability) included; loose_*: one file per blob and one "
        "os.sync(), same run; store_put_floor_s: the pack writer alone on the same blobs (no reading or "
        "hashing; commit included)",
    }


def _dd(inputs: _Inputs, sizes: _Sizes) -> dict[str, Any]:
    """`dd` writing as many bytes as the big file into the stores' file system, into the page cache
    and durably (`conv=fsync`): what the disk allows, in the same run."""
    target = inputs.stores / "dd.bin"
    count = max(1, sizes.big // (4 * MiB))
    load = _load()
    cached: list[float] = []
    durable: list[float] = []
    direct: list[float] = []
    for _ in range(sizes.runs):
        variants = (([], cached), (["conv=fsync"], durable), (["oflag=direct", "conv=fsync"], direct))
        for conv, times in variants:
            target.unlink(missing_ok=True)
            os.sync()
            started = time.perf_counter()
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={target}", "bs=4M", f"count={count}", *conv],
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - started)
    target.unlink(missing_ok=True)
    written = count * 4 * MiB
    return {
        "name": f"data: dd of {_size(written)} into the store's file system (baseline)",
        "page_cache_median_s": statistics.median(cached),
        "page_cache_gb_per_s": written / statistics.median(cached) / 1e9,
        "fsync_median_s": statistics.median(durable),
        "fsync_gb_per_s": written / statistics.median(durable) / 1e9,
        "direct_fsync_median_s": statistics.median(direct),
        "direct_fsync_gb_per_s": written / statistics.median(direct) / 1e9,
        "runs": sizes.runs,
        "load_avg_1m_5m": load,
        "notes": "dd if=/dev/zero bs=4M: into the page cache; with conv=fsync; with oflag=direct "
        "conv=fsync (how packs are written). The durable figures bound any snapshot that must make new "
        "data durable before it commits",
    }


def _checkout(inputs: _Inputs, sizes: _Sizes) -> dict[str, Any]:
    store = inputs.store("checkout")
    manifest = snapshot(store, inputs.big).manifest
    target = inputs.data / "checkout"
    load = _load()

    def fresh() -> Path:
        shutil.rmtree(target, ignore_errors=True)
        return target

    walls, cpus, _ = _measure(sizes.runs, fresh, lambda path: checkout(store, manifest, path))
    shutil.rmtree(target, ignore_errors=True)
    median = statistics.median(walls)
    return {
        "name": f"data: checkout of the {_size(sizes.big)} snapshot (every chunk and the file verified)",
        "median_s": median,
        "runs": sizes.runs,
        "gb_per_s": sizes.big / median / 1e9,
        "cpu_s": statistics.median(cpus),
        "load_avg_1m_5m": load,
        "notes": "writes into the page cache, no sync",
    }


def _fingerprints(inputs: _Inputs, sizes: _Sizes) -> dict[str, Any]:
    path = inputs.table
    manifest = Manifest((FileEntry(path.name, path.stat().st_size, "0" * 64, ("0" * 64,)),))
    info = inspect_table(path, manifest)
    assert info is not None
    _warm(path)
    load = _load()
    walls, cpus, fps = _measure(sizes.cheap_runs, lambda: None, lambda _: fingerprint_table(path, info))
    median = statistics.median(walls)
    return {
        "name": f"data: fingerprints of a 10-column Parquet file ({sizes.table_rows:,} rows)",
        "median_s": median,
        "runs": sizes.cheap_runs,
        "rows_per_s": sizes.table_rows / median,
        "cpu_s": statistics.median(cpus),
        "rows_per_cpu_s": sizes.table_rows / statistics.median(cpus),
        "distinct": len(np.unique(fps)),
        "target": "≥ 2,000,000 rows/s",
        "load_avg_1m_5m": load,
        "notes": "3 integer, 3 float, 2 low-cardinality and 2 high-cardinality string columns; Parquet "
        "decoding (pyarrow, its own threads) included, sorted result",
    }


def _overlap(sizes: _Sizes) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    n = sizes.fingerprints
    a = rng.integers(0, 2**64 - 1, n, dtype=np.uint64)
    b = np.concatenate([a[: n // 2], rng.integers(0, 2**64 - 1, n - n // 2, dtype=np.uint64)])
    a.sort()
    b.sort()
    load = _load()
    walls, cpus, found = _measure(sizes.cheap_runs, lambda: None, lambda _: rows_found(a, b))
    return {
        "name": f"data: rows_found on two sorted {n:,}-row fingerprint arrays",
        "median_s": statistics.median(walls),
        "runs": sizes.cheap_runs,
        "rows_per_s": n / statistics.median(walls),
        "found": found,
        "cpu_s": statistics.median(cpus),
        "target": "≤ 2 s for 10M × 10M",
        "load_avg_1m_5m": load,
    }


# --- DVC ---------------------------------------------------------------------------------------


def _beside_dvc(rows: list[dict[str, Any]], inputs: _Inputs, workdir: Path) -> None:
    try:
        dvc = _install_dvc(workdir)
    except (OSError, subprocess.CalledProcessError) as exc:
        for row in rows[:3]:
            row["dvc"] = f"not measured: installing DVC failed ({exc})"
        return
    version = subprocess.run([dvc, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    startup = statistics.median(_time([dvc, "--version"], cwd=workdir) for _ in range(3))
    scratch = inputs.data / "dvc"
    runs = 3

    def repo() -> Path:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        for command in (
            ["git", "init", "-q"],
            [dvc, "init", "-q"],
            [dvc, "config", "core.analytics", "false"],
        ):
            subprocess.run(command, cwd=scratch, check=True, capture_output=True)
        return scratch

    # the 1 GiB file, hard-linked into a fresh repository (dvc add copies it into its cache)
    big_times = []
    for _ in range(runs):
        root = repo()
        os.link(inputs.big, root / "big.bin")
        os.sync()
        big_times.append(_time([dvc, "add", "-q", "big.bin"], cwd=root))
    # appending 1 MiB: a private copy of the file, added, appended to, added again (timed)
    append_times, append_stored = [], 0
    for _ in range(runs):
        root = repo()
        shutil.copyfile(inputs.big, root / "big.bin")
        subprocess.run([dvc, "add", "-q", "big.bin"], cwd=root, check=True, capture_output=True)
        with open(root / "big.bin", "ab") as handle:
            handle.write(np.random.default_rng(4).bytes(MiB))
        cache_before = _tree_size(root / ".dvc" / "cache")
        append_times.append(_time([dvc, "add", "-q", "big.bin"], cwd=root))
        append_stored = _tree_size(root / ".dvc" / "cache") - cache_before
    # 10,000 small files, copied into a fresh repository
    small_times = []
    for _ in range(runs):
        root = repo()
        shutil.copytree(inputs.small, root / "small")
        os.sync()
        small_times.append(_time([dvc, "add", "-q", "small"], cwd=root))
    shutil.rmtree(scratch, ignore_errors=True)
    for row, times in zip(rows[:3], (big_times, append_times, small_times), strict=True):
        dvc_median = statistics.median(times)
        row["dvc_median_s"] = dvc_median
        row["dvc_runs"] = runs
        row["dvc_over_charter"] = dvc_median / row["median_s"]
        row["dvc_version"] = version
        row["dvc_startup_s"] = startup
    rows[1]["dvc_bytes_new"] = append_stored


def _install_dvc(workdir: Path) -> str:
    venv = workdir / "dvc-venv"
    dvc = venv / "bin" / "dvc"
    if not dvc.exists():
        python = shutil.which("python3") or sys.executable
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", DVC_REQUIREMENT], check=True
        )
    return str(dvc)


def _time(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _size(n: int) -> str:
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    return f"{n // 1024} KiB"


if __name__ == "__main__":
    for row in run(Path(__file__).resolve().parent / ".work", "--quick" in sys.argv):
        print(row, flush=True)

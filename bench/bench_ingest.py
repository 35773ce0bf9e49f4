"""Ingest and the request path alone: `bench_tracks`' record, writer and file benchmarks without
its 10 M-record trace fill, repeated, with CPU time per record.

    .venv/bin/python -m bench.bench_ingest [--quick] [--rounds N] [--backend sqlite,postgresql]

Each round runs, on one fresh store per backend (`bench_tracks._store` and `_setup`), the request
path with the background writer running and with it idle (median µs of a `with
reg.transaction(...)` + `txn.record(3 metrics)`), a flush of queued records (the writer) and a
`reg.ingest` of a JSONL file. Rates are records per second of wall time and per CPU-second of
this process (`time.process_time`: on SQLite the whole work; on PostgreSQL the client's share).
The machine is shared, so the report keeps every round and the load average.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.bench_tracks import SLOT, _setup, _store, bench_ingest_file, bench_writer


def request_path(reg: Any, count: int, *, writer: bool, tag: str) -> float:
    """Median seconds of one request (`writer`: the background writer flushes as it does in
    production; else records only queue until the flush at the end)."""
    recorder = reg.recorder
    if not writer:
        recorder.batch_size, recorder.flush_interval = 10**9, 3600.0
    transaction, clock = reg.transaction, time.perf_counter_ns
    samples = []
    for i in range(count):
        began = clock()
        with transaction(SLOT, key=f"{tag}{i}") as txn:
            txn.record(quality=0.8, format_ok=True, cost=0.01)
        samples.append(clock() - began)
    reg.flush()
    recorder.batch_size, recorder.flush_interval = 10_000, 1.0
    return statistics.median(samples) / 1e9


def run(workdir: Path, quick: bool, rounds: int, backends: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    count = 20_000 if quick else 100_000
    for backend in backends:
        with _store(workdir, backend, folder="ingest") as admin:
            releases = _setup(admin)
            sam = admin.as_user("sam")
            for round_ in range(rounds):
                busy = request_path(sam, count, writer=True, tag=f"b{round_}-")
                idle = request_path(sam, count, writer=False, tag=f"i{round_}-")
                writer = bench_writer(sam, quick)
                file = bench_ingest_file(sam, workdir, releases, quick)
                rows.append({
                    "name": f"{backend}: ingest and the request path, round {round_ + 1}",
                    "request_median_us": round(busy * 1e6, 2),
                    "request_median_us_writer_idle": round(idle * 1e6, 2),
                    "writer_records_per_s": round(writer["records_per_s"]),
                    "writer_records_per_cpu_s": round(writer["records_per_cpu_s"]),
                    "file_records_per_s": round(file["records_per_s"]),
                    "file_records_per_cpu_s": round(file["records_per_cpu_s"]),
                    "load_avg_1m": round(os.getloadavg()[0], 1),
                })  # fmt: skip
    return rows


def _option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv[:-1] else default


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    rounds = int(_option("--rounds", "3"))
    backends = _option("--backend", "sqlite,postgresql").split(",")
    for result in run(Path(__file__).resolve().parent / ".work", quick, rounds, backends):
        print(json.dumps(result), flush=True)

"""Ingest and the request path alone: `bench_tracks`' record, writer and file benchmarks without
its 10 M-record trace fill, repeated, with CPU time per record.

    .venv/bin/python -m bench.bench_ingest [--quick] [--rounds N] [--backend sqlite,postgresql]

Each round runs, on one fresh store per backend (`bench_tracks._store` and `_setup`), the request
path with the background writer running and with it idle (median µs of a `with
reg.transaction(...)` + `txn.record(3 metrics)`), a flush of queued records (the writer) and a
`reg.ingest` of a JSONL file. Rates are records per second of wall time and per CPU-second of
this process (`time.process_time`: on SQLite the whole work; on PostgreSQL the client's share).

The same round measures the engine alone on the same table (with its indexes, in the same store):
records of the writer's shape built beforehand, then only the database's part timed — SQLite: an
`executemany` of the plain 15-column INSERT, and the grouped multi-row INSERTs the writer sends
(their parameter lists built beforehand too); PostgreSQL: COPY of pre-built text in the writer's
chunks. Each path is reported as a share of what the engine alone sustains in the same round.
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
from charter.storage.transactions import CHUNK, uuid7
from charter.storage.txn_writes import (
    COLUMNS,
    TxnRow,
    _sizes,
    _sqlite_statement,
    copy_text,
    groups_of,
    utc_texts,
)

_METRICS = '{"quality":0.8,"format_ok":1.0,"cost":0.01}'
_DECISION = "SELECT slot_id, release_id, arm, rollout_id, stage, table_version, stale FROM transactions"


def _records(reg: Any, count: int) -> list[TxnRow]:
    """`count` new records of the writer's shape (the decision of a stored baseline record)."""
    with reg.store.engine.connect() as conn:
        decision = tuple(conn.exec_driver_sql(_DECISION + " WHERE arm = 'baseline' LIMIT 1").one())
    start = time.time_ns()
    times = [start + i * 10_000 for i in range(count)]
    return [
        TxnRow(uuid7(ms=ns // 1_000_000), ns, *decision, 12.5, None, f"e{i}", _METRICS, None, None)  # type: ignore[arg-type]
        for i, ns in enumerate(times)
    ]


def _timed(reg: Any, work: Any) -> tuple[float, float]:
    """Wall and CPU seconds of `work(dbapi_connection)` in one committed transaction."""
    raw = reg.store.engine.raw_connection()
    try:
        dbapi: Any = raw.driver_connection
        began, cpu = time.perf_counter(), time.process_time()
        if reg.store.engine.dialect.name == "sqlite":
            dbapi.execute("BEGIN IMMEDIATE")
        work(dbapi)
        dbapi.commit()
        return time.perf_counter() - began, time.process_time() - cpu
    finally:
        raw.close()


def engine_alone(reg: Any, count: int) -> dict[str, float]:
    """Records per second (wall, and per CPU-second of this process) of the engine alone."""
    out: dict[str, float] = {}

    def rates(name: str, seconds: tuple[float, float]) -> None:
        out[f"{name}_per_s"], out[f"{name}_per_cpu_s"] = count / seconds[0], count / max(seconds[1], 1e-9)

    copy_sql = f"COPY transactions ({', '.join(COLUMNS)}) FROM STDIN"
    if reg.store.engine.dialect.name == "sqlite":
        rows = _records(reg, count)
        plain = [(r[0], t, *r[2:]) for r, t in zip(rows, utc_texts(r[1] for r in rows), strict=True)]
        insert = f"INSERT OR IGNORE INTO transactions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 15)})"
        rates("engine_executemany", _timed(reg, lambda db: db.executemany(insert, plain)))
        group = next(groups_of(_records(reg, count), [{}] * count))
        own = list(zip(group.ids, utc_texts(group.times), *group[3:9], strict=True))
        statements, start = [], 0
        for size in _sizes(count):
            values = [v for record in own[start : start + size] for v in record]
            statements.append((_sqlite_statement(size), [*group.decision, *values]))
            start += size

        def grouped(db: Any) -> None:
            for sql, params in statements:
                db.execute(sql, params)

        rates("engine_grouped", _timed(reg, grouped))
    else:
        rows = _records(reg, count)
        chunks = [
            copy_text(g) for s in range(0, count, CHUNK) for g in groups_of(rows[s : s + CHUNK], [{}] * CHUNK)
        ]

        def copy(db: Any) -> None:
            with db.cursor() as cursor, cursor.copy(copy_sql) as stream:
                for text in chunks:
                    stream.write(text)

        rates("engine_copy", _timed(reg, copy))
    return out


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


def run(
    workdir: Path, quick: bool, rounds: int = 3, backends: list[str] | None = None
) -> list[dict[str, Any]]:
    backends = backends or ["sqlite", "postgresql"]
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
                alone = engine_alone(admin, 20_000 if quick else 200_000)
                best = max(alone.get("engine_executemany_per_s", 0), alone.get("engine_grouped_per_s", 0),
                           alone.get("engine_copy_per_s", 0))  # fmt: skip
                rows.append({
                    "name": f"{backend}: ingest and the request path, round {round_ + 1}",
                    "request_median_us": round(busy * 1e6, 2),
                    "request_median_us_writer_idle": round(idle * 1e6, 2),
                    "writer_records_per_s": round(writer["records_per_s"]),
                    "writer_records_per_cpu_s": round(writer["records_per_cpu_s"]),
                    "file_records_per_s": round(file["records_per_s"]),
                    "file_records_per_cpu_s": round(file["records_per_cpu_s"]),
                    **{k: round(v) for k, v in alone.items()},
                    "writer_share_of_engine": round(writer["records_per_s"] / best, 2),
                    "file_share_of_engine": round(file["records_per_s"] / best, 2),
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

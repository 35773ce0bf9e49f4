"""Deployment tracks: routing, recording, ingest, trace and state-at-time, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.bench_tracks [--quick] [--only trace,state] [--trace-records N]

Targets (issue 5): `route()` in-process median ≤ 2 µs and ≥ 300,000 decisions/s on one core; the
request path of `with reg.transaction(...)` ≤ 10 µs median; sustained ingest ≥ 100,000 records/s
into SQLite and ≥ 50,000/s into PostgreSQL; `trace` of one transaction among 10 million ≤ 5 ms
median; `state --at` ≤ 20 ms.

Set-up (per backend): a slot whose production release and candidate share a model version (so the
candidate needs no promotion gate), a rollout advanced by an admin override to canary-micro (5 %).

- route: `reg.route(slot, key)` through the SDK with the table cached, distinct keys, timed in
  batches (median of per-batch means).
- record: each `with reg.transaction(slot, key=k) as txn: txn.record(...)` timed alone, with the
  background writer running (the median is what a request pays; p99 includes GIL waits).
- ingest, writer: `reg.flush()` of records queued by `reg.transaction` (the background writer's
  path: one database transaction, executemany on SQLite, COPY on PostgreSQL).
- ingest, file: `reg.ingest(slot, file.jsonl)` (parse, validate, assign rollout and stage).
- trace: the table is filled to N records with one INSERT … SELECT per million rows (ids shaped
  like UUIDv7s, times 10 µs apart, 100 per millisecond), then real records are added through the
  recorder; `reg.trace(id)` is timed on those: "cold" right after a ledger change (nothing cached),
  "warm" when the release's chain is cached (the ledger head has not moved).
- state: a slot with a history of R rollouts; `reg.state(slot, at=T)` at random instants.

PostgreSQL: a database of our own is created at postgresql://postgres@127.0.0.1:5432 and dropped
afterwards. The full run uses N = 10,000,000 on both engines (`--quick`: 20,000).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

POSTGRES = os.environ.get("CHARTER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SLOT = "agent"
MODEL = {
    "family": "claude",
    "provider": "anthropic",
    "provider_model": "claude-sonnet-4-5-20250929",
    "serving": {"temperature": 0.2, "max_tokens": 400},
    "primary_metrics": {"accuracy": "higher"},
}


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _row(name: str, samples: list[float], **notes: Any) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "name": name,
        "median_s": statistics.median(ordered),
        "p99_s": _percentile(ordered, 0.99),
        "runs": len(samples),
        **notes,
    }


@contextmanager
def _store(workdir: Path, backend: str, *, folder: str = "tracks", clock: Any = None) -> Iterator[Any]:
    """A fresh store on `backend` (its own PostgreSQL database, dropped afterwards), on `clock` if
    given (the web benchmark's manual clock)."""
    from charter.config import Settings
    from charter.service.setup import init_store, open_registry

    home = workdir / f"{folder}-{backend}"
    shutil.rmtree(home, ignore_errors=True)
    url = None
    if backend == "postgresql":
        import psycopg

        admin = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
        name = f"charter_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{admin.rpartition('/')[0]}/{name}"
    try:
        settings = Settings.for_home(home, user="admin", database_url=url)
        init_store(settings, clock)
        reg = open_registry(settings, clock=clock)
        try:
            yield reg
        finally:
            reg.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if url is not None:
            import psycopg

            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _setup(reg: Any) -> dict[str, str]:
    """A slot on the default track with a rollout in canary-micro (5 %)."""
    reg.users.add("sam", ["service"])
    reg.models.register("m", MODEL)
    reg.slots.create(SLOT)
    production = reg.releases.create(SLOT, model="m@1.0.0").digest
    candidate = reg.releases.create(SLOT, model="m@1.0.0", params={"temperature": 0.3}).digest
    reg.slots.bootstrap(SLOT, release=production)
    reg.rollouts.start(SLOT, release=candidate, rollback_plan="charter slot rollback agent")
    reg.rollouts.advance(SLOT, override=True, reason="benchmark: skip shadow")
    return {"production": production, "candidate": candidate}


def bench_route(reg: Any, quick: bool) -> dict[str, Any]:
    keys = [f"user-{i}" for i in range(20_000 if quick else 200_000)]
    batch = 2_000
    route = reg.route
    route(SLOT, "warm-up")
    per_call = []
    for _ in range(3 if quick else 5):
        for start in range(0, len(keys), batch):
            chunk = keys[start : start + batch]
            began = time.perf_counter_ns()
            for key in chunk:
                route(SLOT, key)
            per_call.append((time.perf_counter_ns() - began) / len(chunk) / 1e9)
    median = statistics.median(per_call)
    return _row("route() via the SDK, cached table, canary 5 %", per_call, decisions_per_s=round(1 / median),
                batch=batch)  # fmt: skip


def bench_record(reg: Any, quick: bool) -> dict[str, Any]:
    count = 20_000 if quick else 200_000
    transaction = reg.transaction
    clock = time.perf_counter_ns
    samples = []
    for i in range(count):
        began = clock()
        with transaction(SLOT, key=f"u{i}") as txn:
            txn.record(quality=0.8, format_ok=True, cost=0.01)
        samples.append((clock() - began) / 1e9)
    reg.flush()
    return _row("request path of `with reg.transaction(...)` + record(3 metrics)", samples,
                note="background writer running")  # fmt: skip


def bench_writer(reg: Any, quick: bool) -> dict[str, Any]:
    recorder = reg.recorder
    recorder.batch_size, recorder.flush_interval = 10**9, 3600.0  # queue only; flush below
    per_round = 20_000 if quick else 200_000
    rates: list[float] = []
    cpu_rates: list[float] = []  # records per CPU-second of this process (SQLite: the whole work)
    for round_ in range(2 if quick else 3):
        for i in range(per_round):
            with reg.transaction(SLOT, key=f"w{round_}-{i}") as txn:
                txn.record(quality=0.8, format_ok=True, cost=0.01)
        began, cpu = time.perf_counter(), time.process_time()
        written = reg.flush().written
        rates.append(written / (time.perf_counter() - began))
        cpu_rates.append(written / max(time.process_time() - cpu, 1e-9))
    recorder.batch_size, recorder.flush_interval = 10_000, 1.0
    return {"name": "sustained ingest: background writer (flush of queued records)",
            "records_per_s": statistics.median(rates), "records_per_cpu_s": statistics.median(cpu_rates),
            "batch": per_round, "rounds": len(rates)}  # fmt: skip


def bench_ingest_file(reg: Any, workdir: Path, releases: dict[str, str], quick: bool) -> dict[str, Any]:
    count = 20_000 if quick else 300_000
    path = workdir / "tracks-ingest.jsonl"
    start = datetime.now(UTC)
    rng = random.Random(3)
    with path.open("w") as out:
        for i in range(count):
            release = releases["candidate"] if i % 20 == 0 else releases["production"]
            record = {
                "time": (start + timedelta(microseconds=i * 10)).isoformat(),
                "release": release[:12],
                "key": f"f{i}",
                "metrics": {"quality": rng.gauss(0.8, 0.05), "format_ok": 1, "cost": 0.01},
            }
            out.write(json.dumps(record) + "\n")
    cpu = time.process_time()
    report = reg.ingest(SLOT, path)
    cpu = time.process_time() - cpu
    path.unlink()
    rate = report.lines / report.seconds
    return {
        "name": "sustained ingest: `txn ingest` of a JSONL file",
        "records_per_s": rate,
        "records_per_cpu_s": report.lines / max(cpu, 1e-9),
        "records": report.lines,
    }


_COLUMNS = (
    "id, time, slot_id, release_id, arm, rollout_id, stage, table_version, stale, latency_ms, error, key, "
    "metrics, inputs, parent_id"
)
# x: the record's number; ms = :base + x / 100 (100 records per millisecond, 10 µs apart)
_FILL_SQLITE = f"""
    WITH RECURSIVE n(x) AS (
        SELECT :offset UNION ALL SELECT x + 1 FROM n WHERE x < :offset + :size - 1
    )
    INSERT INTO transactions ({_COLUMNS})
    SELECT printf('%08x-%04x-7000-8000-%012x', (:base + x / 100) >> 16, (:base + x / 100) & 65535, x),
           strftime('%Y-%m-%d %H:%M:%S', (:base + x / 100) / 1000, 'unixepoch')
             || printf('.%06d', ((:base + x / 100) % 1000) * 1000 + (x % 100) * 10),
           :slot, :release, 'baseline', NULL, NULL, 1, 0, 1.5, NULL, 'k' || x, :metrics, NULL, NULL
    FROM n
"""
_FILL_POSTGRES = f"""
    INSERT INTO transactions ({_COLUMNS})
    SELECT lpad(to_hex((:base + x / 100) >> 16), 8, '0') || '-'
             || lpad(to_hex((:base + x / 100) & 65535), 4, '0') || '-7000-8000-' || lpad(to_hex(x), 12, '0'),
           to_timestamp((:base + x / 100) / 1000.0) + make_interval(secs => (x % 100) * 0.00001),
           :slot, :release, 'baseline', NULL, NULL, 1, false, 1.5, NULL, 'k' || x, :metrics, NULL, NULL
    FROM generate_series(CAST(:offset AS bigint), CAST(:offset AS bigint) + :size - 1) AS x
"""


def _fill(reg: Any, count: int, slot_id: int, release_id: int) -> float:
    """Add `count` records with one INSERT … SELECT per million; returns the seconds it took."""
    import sqlalchemy as sa

    began = time.perf_counter()
    base_ms = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
    step = 1_000_000
    for offset in range(0, count, step):
        size = min(step, count - offset)
        params = {"offset": offset, "size": size, "base": base_ms, "slot": slot_id, "release": release_id,
                  "metrics": '{"quality":0.8,"format_ok":1.0,"cost":0.01}'}  # fmt: skip
        sql = _FILL_SQLITE if reg.store.dialect == "sqlite" else _FILL_POSTGRES
        with reg.store.engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    return time.perf_counter() - began


def bench_trace(reg: Any, quick: bool, count: int | None = None) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    count = count or (20_000 if quick else 10_000_000)
    with reg.store.read() as tx:
        slot = tx.slots.slot(SLOT)
        production = tx.slots.production(slot.id)
        existing = tx.transactions.count()
    fill_s = _fill(reg, count - existing, slot.id, production.release_id) if count > existing else 0.0
    if reg.store.dialect == "postgresql":
        with reg.store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE transactions")
    ids = []
    for i in range(300):
        with reg.transaction(SLOT, key=f"t{i}") as txn:
            txn.record(quality=0.8)
        ids.append(txn.id)
    reg.flush()
    with reg.store.read() as tx:
        total = tx.transactions.count()
    rng = random.Random(5)
    runs = 30 if quick else 60
    executed = [0]

    def counted(*_: Any) -> None:
        executed[0] += 1

    from charter.service import provenance

    combined = getattr(provenance, "read_trace", None)  # run on the driver's cursor: not an SA event

    def read_counted(*args: Any, **kwargs: Any) -> Any:
        executed[0] += 1 if args[1] else 0  # (no kinds asked for: no statement)
        return combined(*args, **kwargs)

    def timed(change: Any, txn_ids: list[str]) -> tuple[list[float], dict[str, float]]:
        """Wall seconds of `trace` on each id, after `change(i)` (which returns the registry to trace
        with); and the medians of the calling thread's CPU seconds (`thread_time`, not the background
        writer's) and of the SQL statements a trace executed (counted in a second pass, after the
        same change: load-independent)."""
        wall, cpu, statements = [], [], []
        for i, txn_id in enumerate(txn_ids):
            target = change(i)
            began, began_cpu = time.perf_counter(), time.thread_time()
            target.trace(txn_id)
            cpu.append(time.thread_time() - began_cpu)
            wall.append(time.perf_counter() - began)
        sa.event.listen(reg.store.engine, "after_cursor_execute", counted)
        if combined is not None:
            provenance.read_trace = read_counted
        try:
            for i, txn_id in enumerate(txn_ids[:10]):
                target = change(i)
                executed[0] = 0
                target.trace(txn_id)
                statements.append(executed[0])
        finally:
            sa.event.remove(reg.store.engine, "after_cursor_execute", counted)
            if combined is not None:
                provenance.read_trace = combined
        return wall, {"cpu_median_s": statistics.median(cpu), "statements": statistics.median(statements)}

    def unrelated(i: int) -> Any:  # moves the ledger head; touches nothing a trace shows
        reg.policies.apply({"drift": {"input_sample_rate": 0.1 + i / 1000}})
        return reg

    def related(i: int) -> Any:  # model.primary_metrics_changed on the release's model: re-read the chain
        reg.models.set_primary_metrics("m", {"accuracy": "lower" if i % 2 == 0 else "higher"})
        return reg

    def rollout(i: int) -> Any:  # rollout.pause / resume on the slot: re-read its periods and rollouts
        (reg.rollouts.pause if i % 2 == 0 else reg.rollouts.resume)(SLOT)
        return reg

    def scratch(i: int) -> Any:  # a new registry: nothing kept (a new process, or > 1,000 events since)
        return reg.as_user(reg.actor)

    reg.trace(ids[0])
    warm, notes = timed(lambda i: reg, rng.choices(ids, k=300))
    rows = [
        _row(f"trace of one transaction among {total:,} (warm: nothing it shows changed)", warm,
             fill_s=round(fill_s, 1), **notes),
    ]  # fmt: skip
    cases = (
        ("cold: after an unrelated ledger change, policy applied", unrelated),
        ("cold: after a related change, the model's primary metrics", related),
        ("cold: after a rollout pause or resume on the slot", rollout),
        ("from scratch: nothing kept", scratch),
    )
    for name, change in cases:
        wall, notes = timed(change, rng.choices(ids, k=runs))
        rows.append(_row(f"trace of one transaction among {total:,} ({name})", wall, **notes))
    return rows  # (an even number of pauses and resumes: the rollout is running again)


def bench_state(reg: Any, releases: dict[str, str], quick: bool) -> dict[str, Any]:
    rollouts = 20 if quick else 200
    reg.rollouts.abort(SLOT, reason="benchmark history")
    times = []
    for i in range(rollouts):
        reg.rollouts.start(SLOT, release=releases["candidate"], rollback_plan="x")
        times.append(datetime.now(UTC))
        reg.rollouts.pause(SLOT)
        reg.rollouts.resume(SLOT)
        reg.rollouts.abort(SLOT, reason=f"round {i}")
    with reg.store.read() as tx:
        events = tx.ledger.head()[0]
    rng = random.Random(9)
    samples = []
    for _ in range(100 if quick else 300):
        at = rng.choice(times) + timedelta(microseconds=rng.randrange(1000))
        began = time.perf_counter()
        reg.state(SLOT, at)
        samples.append(time.perf_counter() - began)
    return _row(f"state --at on a slot with {rollouts} rollouts ({events:,} audit events in all)", samples)


def _backend(workdir: Path, backend: str, quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with _store(workdir, backend) as admin:
        releases = _setup(admin)
        sam = admin.as_user("sam")  # the application: service role
        if _wanted("route"):
            rows.append(bench_route(sam, quick))
        if _wanted("record"):
            rows.append(bench_record(sam, quick))
        if _wanted("writer"):
            rows.append(bench_writer(sam, quick))
        if _wanted("ingest"):
            rows.append(bench_ingest_file(sam, workdir, releases, quick))
        sam.flush()
        if _wanted("trace"):
            rows.extend(bench_trace(admin, quick, TRACE_RECORDS))
        if _wanted("state"):
            rows.append(bench_state(admin, releases, quick))
    for row in rows:
        row["name"] = f"{backend}: {row['name']}"
    return rows


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    rows = _backend(workdir, "sqlite", quick)
    try:
        import psycopg

        psycopg.connect(POSTGRES.replace("postgresql+psycopg://", "postgresql://")).close()
    except Exception as exc:
        rows.append({"name": "postgresql: skipped", "reason": str(exc).splitlines()[0]})
        return rows
    rows.extend(_backend(workdir, "postgresql", quick))
    return rows


ONLY: set[str] = set()  # `--only trace,state`: just these of route, record, writer, ingest, trace, state


def _wanted(name: str) -> bool:
    return not ONLY or name in ONLY


TRACE_RECORDS: int | None = None  # `--trace-records N`: fill the table to N for `trace` (default 10 M)

if __name__ == "__main__":
    quick = "--quick" in sys.argv
    if "--only" in sys.argv:
        ONLY = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    if "--trace-records" in sys.argv:
        TRACE_RECORDS = int(sys.argv[sys.argv.index("--trace-records") + 1])
    for result in run(Path(__file__).resolve().parent / ".work", quick):
        print(json.dumps(result, default=str), flush=True)

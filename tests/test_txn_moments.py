"""The sums kept at write time (`txn_moments`) answer the gate and the charts exactly as scanning
the records would: on random records (duplicates included), on both engines, and under two
concurrent writers on PostgreSQL."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection, Engine

from charter.stats.moments import Moments
from charter.storage import txn_moments
from charter.storage.engine import create_engine
from charter.storage.transactions import TransactionRepo
from charter.storage.txn_writes import TxnRow, metrics_json
from tests.conftest import rolled_back

BASE = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # the records' 3 days hold two UTC midnights
RANGE_US = 3 * 24 * 3600 * 1_000_000
ROLLOUTS = ("0190aaaa-0000-7000-8000-000000000001", "0190aaaa-0000-7000-8000-000000000002")
ARMS = ("baseline", "candidate", "shadow")
METRICS = ("quality", "cost")


def row(n: int, offset_us: int, rollout: str | None, arm: str, metrics: dict[str, float]) -> TxnRow:
    return TxnRow(
        str(uuid.UUID(int=n + 1)), BASE + timedelta(microseconds=offset_us), 1, 1, arm, rollout, "s", 1,
        False, None, None, None, metrics_json(metrics), None, None,
    )  # fmt: skip


offsets = st.one_of(
    st.integers(0, RANGE_US),
    st.integers(0, RANGE_US // 60_000_000).map(lambda m: m * 60_000_000),  # on a whole minute
    st.integers(0, RANGE_US // 3_600_000_000).map(lambda h: h * 3_600_000_000 - 1),  # just before an hour
)
# PostgreSQL raises on a float8 product that underflows (x · x for |x| < 1e-154): the record scans
# square in SQL, so values that small stay out of the examples
metric_values = st.floats(-50, 50).filter(lambda x: x == 0 or abs(x) > 1e-6) | st.integers(0, 3)
records = st.lists(
    st.builds(
        row,
        st.integers(0, 60),  # a small pool of ids: duplicates happen
        offsets,
        st.sampled_from((*ROLLOUTS, None)),
        st.sampled_from(ARMS),
        st.dictionaries(st.sampled_from(METRICS), metric_values),
    ),
    max_size=80,
)


def first_of_each(rows: Sequence[TxnRow]) -> list[TxnRow]:
    seen: set[str] = set()
    out = []
    for r in rows:
        if r.id not in seen:
            seen.add(r.id)
            out.append(r)
    return out


def same(a: dict[str, dict[str, dict[Any, Moments]]], b: dict[str, dict[str, dict[Any, Moments]]]) -> None:
    """Equal, up to the order in which floating-point sums were added."""
    flat_a = {(arm, m, k): v for arm, ms in a.items() for m, ks in ms.items() for k, v in ks.items()}
    flat_b = {(arm, m, k): v for arm, ms in b.items() for m, ks in ms.items() for k, v in ks.items()}
    assert flat_a.keys() == flat_b.keys()
    for key, x in flat_a.items():
        y = flat_b[key]
        assert x.count == y.count, key
        assert x.mean == pytest.approx(y.mean, rel=1e-9, abs=1e-9), key
        assert x.m2 == pytest.approx(y.m2, rel=1e-6, abs=1e-6), key


def table(conn: Connection) -> dict[tuple[Any, ...], tuple[int, float, float]]:
    rows = conn.execute(
        sa.text("SELECT rollout_id, span, arm, metric, bucket, n, total, squares FROM txn_moments")
    )
    return {tuple(r[:5]): (int(r[5]), float(r[6]), float(r[7])) for r in rows}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=records,
    second=records,
    window=st.tuples(offsets, offsets),
    width_minutes=st.sampled_from([1, 7, 60, 180]),
)
def test_aggregates_answer_as_the_records_do(
    engine: Engine, first: list[TxnRow], second: list[TxnRow], window: tuple[int, int], width_minutes: int
) -> None:
    start, end = (BASE + timedelta(microseconds=us) for us in sorted(window))
    with rolled_back(engine) as conn:
        repo = TransactionRepo(conn)
        # the second batch repeats ids of the first (and of itself): those records are skipped
        assert repo.insert_many(first) == len(first_of_each(first))
        stored = first_of_each(first)
        known = {r.id for r in stored}
        new = [r for r in first_of_each(second) if r.id not in known]
        assert repo.insert_many(second) == len(new)
        stored += new

        for rollout in ROLLOUTS:
            query = {
                "rollout_id": rollout,
                "arms": ARMS,
                "start": start,
                "end": end,
                "metrics": list(METRICS),
            }
            same(repo.daily_moments(**query), repo.scan_daily_moments(**query))

            chart_start = start.replace(second=0, microsecond=0)
            width = width_minutes * 60
            got = repo.bucket_moments(**{**query, "start": chart_start}, width_seconds=width)
            same(got, python_buckets(stored, rollout, chart_start, end, width))

        # what was added batch by batch is what the migration's backfill computes from the records
        incremental = table(conn)
        txn_moments.rebuild(conn)
        rebuilt = table(conn)
        assert incremental.keys() == rebuilt.keys()
        for key, (n, total, squares) in incremental.items():
            assert n == rebuilt[key][0]
            assert total == pytest.approx(rebuilt[key][1], rel=1e-9, abs=1e-9)
            assert squares == pytest.approx(rebuilt[key][2], rel=1e-9, abs=1e-9)


def python_buckets(
    rows: Sequence[TxnRow], rollout: str, start: datetime, end: datetime, width: int
) -> dict[str, dict[str, dict[int, Moments]]]:
    """The chart's oracle, in exact integer microseconds."""
    values: dict[str, dict[str, dict[int, list[float]]]] = {arm: {} for arm in ARMS}
    for r in rows:
        if r.rollout_id != rollout or not start <= r.time <= end:
            continue
        bucket = (r.time - start) // timedelta(seconds=width)
        for metric, x in json.loads(r.metrics).items():
            values[r.arm].setdefault(metric, {}).setdefault(bucket, []).append(x)
    return {
        arm: {m: {b: _sums(xs) for b, xs in by_bucket.items()} for m, by_bucket in by_metric.items()}
        for arm, by_metric in values.items()
    }


def _sums(xs: list[float]) -> Moments:
    return Moments.from_sums(len(xs), sum(xs), sum(x * x for x in xs))


def test_a_window_inside_one_minute_and_across_midnight(engine: Engine) -> None:
    rows = [
        row(1, 0, ROLLOUTS[0], "baseline", {"quality": 1.0}),  # 22:00:00 exactly
        row(2, 2 * 3600 * 10**6 - 1, ROLLOUTS[0], "baseline", {"quality": 2.0}),  # 23:59:59.999999
        row(3, 2 * 3600 * 10**6, ROLLOUTS[0], "baseline", {"quality": 4.0}),  # midnight
    ]
    with rolled_back(engine) as conn:
        repo = TransactionRepo(conn)
        assert repo.insert_many(rows, fresh_ids=True) == 3
        q = {"rollout_id": ROLLOUTS[0], "arms": ["baseline"], "metrics": ["quality"]}
        days = repo.daily_moments(
            **q,
            start=BASE + timedelta(hours=1, minutes=59, seconds=30),
            end=BASE + timedelta(hours=2, seconds=1),
        )
        assert days["baseline"]["quality"] == {"2026-03-01": Moments(1, 2.0), "2026-03-02": Moments(1, 4.0)}
        inside = repo.daily_moments(**q, start=BASE, end=BASE + timedelta(microseconds=1))
        assert inside["baseline"]["quality"] == {"2026-03-01": Moments(1, 1.0)}
        nothing = repo.daily_moments(
            **q, start=BASE + timedelta(microseconds=1), end=BASE + timedelta(minutes=5)
        )
        assert nothing["baseline"] == {}


def test_concurrent_writers_lose_no_update(engine: Engine, backend: str) -> None:
    """Two connections add records of the same rollout, arm, metric and minute at the same time;
    each commits, and the sums hold both (SQLite serialises writers; PostgreSQL upserts)."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time; the upsert is exercised by the other tests")
    batches = [
        [row(100 * w + i, i * 1000, ROLLOUTS[0], "candidate", {"quality": float(w + 1)}) for i in range(50)]
        for w in range(2)
    ]
    a_wrote, b_writes = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with engine.connect() as conn, conn.begin():
                TransactionRepo(conn).insert_many(batches[0])
                a_wrote.set()
                b_writes.wait(timeout=30)  # commits while the other writer is (about to be) writing
        except BaseException as exc:  # reported below
            errors.append(exc)
            a_wrote.set()

    def second() -> None:
        try:
            a_wrote.wait(timeout=30)
            with engine.connect() as conn, conn.begin():
                b_writes.set()
                TransactionRepo(conn).insert_many(batches[1])  # waits for the first to commit
        except BaseException as exc:  # reported below
            errors.append(exc)
            b_writes.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with engine.connect() as conn:
        got = table(conn)
    minute = txn_moments.EPOCH + timedelta(seconds=int(BASE.timestamp()))
    assert got[ROLLOUTS[0], 60, "candidate", "quality", int(minute.timestamp())] == (100, 150.0, 250.0)
    assert got[ROLLOUTS[0], 3600, "candidate", "quality", int(minute.timestamp())] == (100, 150.0, 250.0)


def test_the_migration_fills_the_sums_from_the_stored_records(backend: str, database_url: str) -> None:
    """A store at the revision before `txn_moments`, with records: upgrading computes their sums."""
    from alembic import command

    from charter.storage import migrate

    rows = [
        row(i, i * 7_000_000_123, ROLLOUTS[i % 2], ARMS[i % 3], {"quality": i / 10, "cost": 1.5})
        for i in range(40)
    ] + [row(99, 0, None, "baseline", {"quality": 1.0})]
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:  # back to the revision before, with records stored
            config = migrate._config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0003")
        with engine.begin() as conn:
            assert not sa.inspect(conn).has_table("txn_moments")
            conn.execute(
                sa.text(
                    "INSERT INTO transactions (id, time, slot_id, release_id, arm, rollout_id, stale, "
                    "metrics) VALUES (:id, :time, 1, 1, :arm, :rollout, false, :metrics)"
                ),
                [
                    {"id": r.id, "time": r.time, "arm": r.arm, "rollout": r.rollout_id, "metrics": r.metrics}
                    for r in rows
                ],
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            got = table(conn)
        expected = txn_moments.accumulate(
            (r.rollout_id, r.arm, r.time, json.loads(r.metrics)) for r in rows if r.rollout_id is not None
        )
        assert got.keys() == expected.keys()
        for key, (n, total, squares) in expected.items():
            assert got[key] == (n, pytest.approx(total), pytest.approx(squares))
    finally:
        engine.dispose()


def stored_time(when: datetime, backend: str) -> Any:
    """A timestamp as charter stores it (SQLite: naive UTC text)."""
    if backend == "sqlite":
        return when.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return when


def test_ingesting_a_file_twice_counts_each_record_once_in_the_gate(
    registry: Any, tmp_path: Path, clock: Any
) -> None:
    """`txn ingest` of records with ids, one repeated inside the file, then the whole file again:
    the gate's moments count every record once, as the records themselves do."""
    from tests.test_slot_helpers import PLAN, world

    w = world(registry, tmp_path, clock)
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    start = w.clock.now()
    lines = []
    for i in range(30):
        record = {
            "id": str(uuid.UUID(int=1000 + i)),
            "time": (start + timedelta(seconds=7 * i)).isoformat(),
            "release": (w.candidate if i % 3 == 0 else w.production)[:12],
            "metrics": {"quality": i / 30, "format_ok": True},
        }
        lines.append(json.dumps(record))
    lines.append(lines[4])  # the same record again in the file
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert w.sam.ingest("agent", path).inserted == 30
    assert w.sam.ingest("agent", path).inserted == 0
    w.clock.advance(timedelta(hours=1))
    rollout = w.olga.rollouts.status("agent").rollout["id"]
    with w.admin.store.read() as tx:
        query = {
            "rollout_id": rollout,
            "arms": ARMS,
            "start": start,
            "end": w.clock.now(),
            "metrics": ["quality", "format_ok"],
        }
        kept = tx.transactions.daily_moments(**query)
        same(kept, tx.transactions.scan_daily_moments(**query))
    assert sum(m.count for m in kept["baseline"]["quality"].values()) == 20
    assert sum(m.count for m in kept["shadow"]["quality"].values()) == 10


def sums_one_by_one(
    out: txn_moments.Sums,
    rollout: str,
    arm: str,
    times: Sequence[datetime | int],
    metrics: Sequence[dict[str, float]],
) -> None:
    """The reference for `add_group`: records grouped by minute and metric names in the order they
    first appear, each group's columns summed in record order, then added to `out`."""
    groups: dict[tuple[int, tuple[str, ...]], list[dict[str, float]]] = {}
    for when, values in zip(times, metrics, strict=True):
        second = when // 1_000_000_000 if isinstance(when, int) else int(when.timestamp())
        groups.setdefault((second // 60, tuple(values)), []).append(values)
    for (minute, names), rows in groups.items():
        for name in names:
            column = [r[name] for r in rows]
            total, squares = sum(column), sum(x * x for x in column)
            for span, start in ((60, minute * 60), (3600, minute * 60 // 3600 * 3600)):
                acc = out.setdefault((rollout, span, arm, name, start), [0, 0.0, 0.0])
                acc[0] += len(rows)
                acc[1] += total
                acc[2] += squares


same_names = st.lists(st.sampled_from(("quality", "cost", "format_ok")), unique=True, max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    names=same_names,
    values=st.lists(st.lists(metric_values, min_size=3, max_size=3), min_size=1, max_size=60),
    steps_ms=st.lists(st.integers(0, 40_000), min_size=60, max_size=60),
    shuffle=st.randoms(use_true_random=False),
    mix=st.sampled_from(["sorted", "shuffled", "renamed", "reordered", "datetimes"]),
    earlier=st.booleans(),
)
def test_a_batch_of_one_metric_set_adds_the_sums_the_records_one_by_one_add(
    names: list[str], values: list[list[float]], steps_ms: list[int], shuffle: Any, mix: str, earlier: bool
) -> None:
    """The common case (times in order, in nanoseconds, the same metrics in every record) takes a
    path that does nothing per record in Python: it must add exactly what the general one adds,
    and every other case (out of order, a record with other names or another order, datetimes)
    must still be summed right."""
    ns, times = 1_790_000_000_000_000_000, []
    for step in steps_ms[: len(values)]:
        ns += step * 1_000_000 + 7
        times.append(ns)
    metrics = [dict(zip(names, v, strict=False)) for v in values]
    recorded: list[Any] = list(times)
    if mix == "shuffled":
        shuffle.shuffle(recorded)
    elif mix == "renamed" and names:
        metrics[-1] = {"other": 1.0, **metrics[-1]}
    elif mix == "reordered" and len(names) > 1:
        metrics[0] = dict(reversed(metrics[0].items()))
    elif mix == "datetimes":
        recorded[0] = datetime.fromtimestamp(recorded[0] // 1000 / 1e6, UTC)
    out: txn_moments.Sums = {}
    expected: txn_moments.Sums = {}
    for _ in range(2 if earlier else 1):  # earlier: sums already there from an earlier chunk
        txn_moments.add_group(out, ROLLOUTS[0], "baseline", recorded, metrics)
        sums_one_by_one(expected, ROLLOUTS[0], "baseline", recorded, metrics)
    assert out == expected

"""The grouped writes (`charter.storage.txn_writes`: SQLite's multi-row INSERT … SELECT, PostgreSQL's
COPY text joined from columns) store exactly what a plain SQLAlchemy insert of the same records
stores, and add to `txn_moments` exactly the sums that recomputing them from the stored records
gives (`txn_moments.rebuild`): fresh ids, duplicates, odd text, mixed decisions, both engines."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from charter.storage import txn_moments
from charter.storage.schema import transactions
from charter.storage.transactions import TransactionRepo, uuid7
from charter.storage.txn_writes import COLUMNS, SQLITE_ROWS, TxnRow, _sizes, metrics_json, metrics_jsons
from tests.conftest import rolled_back

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START_NS = 1_790_000_000_123_456_789
ROLLOUT = "0190aaaa-0000-7000-8000-000000000001"
# (slot_id, release_id, arm, rollout_id, stage, table_version, stale): what a routing decision gives
DECISIONS = [
    (1, 10, "baseline", ROLLOUT, "canary-micro", 7, False),
    (1, 11, "candidate", ROLLOUT, "canary-micro", 7, False),
    (1, 10, "baseline", ROLLOUT, "canary-micro", 7, True),  # a fallback or a stale table
    (1, 11, "shadow", ROLLOUT, "odd\tstage\\", None, False),
    (2, 12, "baseline", None, None, None, False),  # no rollout: no sums
]
ODD = ["tab\there", "new\nline", "cr\r", "back\\slash", 'quote" é %s %r']


def records(n: int, seed: int) -> list[TxnRow]:
    """`n` records of mixed decisions, times (nanoseconds and aware datetimes in other zones, over
    a few minutes), optional fields and odd text."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ns = START_NS + i * 97_000_000 + rng.randrange(1000)
        when: datetime | int = ns
        if i % 3 == 0:
            when = (EPOCH + timedelta(microseconds=ns // 1000)).astimezone(timezone(timedelta(hours=-5)))
        metrics = {"quality": rng.random(), "cost": rng.uniform(-1, 1)} if i % 7 else {}
        if i % 11 == 0:
            metrics["tab\tname%"] = 2.5
        odd = rng.choice(ODD)
        out.append(
            TxnRow(
                uuid7(ms=ns // 1_000_000),
                when,
                *rng.choice(DECISIONS),
                None if i % 5 == 0 else rng.uniform(0, 500),
                odd if i % 4 == 0 else None,
                None if i % 6 == 0 else f"k{i} {odd}"[:200],
                metrics_json(metrics),
                '{"text": "'
                + odd.replace("\\", "\\\\")
                .replace('"', '\\"')
                .replace("\t", "\\t")
                .replace("\n", "\\n")
                .replace("\r", "\\r")
                + '"}'
                if i % 2 == 0
                else None,
                None if i % 9 else str(uuid.UUID(int=i)),
            )
        )
    return out


def plain_insert(conn: Connection, rows: list[TxnRow]) -> None:
    """The reference: SQLAlchemy's insert of every record (times as datetimes), then the sums
    recomputed from the stored records."""
    conn.execute(
        sa.insert(transactions),
        [
            dict(
                zip(
                    COLUMNS,
                    (r[0], r[1] if isinstance(r[1], datetime) else as_time(r[1]), *r[2:]),
                    strict=True,
                )
            )
            for r in rows
        ],
    )
    txn_moments.rebuild(conn)


def as_time(when: datetime | int) -> datetime:
    return when if isinstance(when, datetime) else EPOCH + timedelta(microseconds=when // 1000)


def stored(conn: Connection) -> tuple[list[tuple[Any, ...]], dict[tuple[Any, ...], tuple[int, float, float]]]:
    rows = [tuple(r) for r in conn.execute(sa.select(transactions).order_by(transactions.c.id))]
    sums = {
        tuple(r[:5]): (int(r[5]), float(r[6]), float(r[7]))
        for r in conn.exec_driver_sql(
            "SELECT rollout_id, span, arm, metric, bucket, n, total, squares FROM txn_moments"
        )
    }
    return rows, sums


def assert_same(fast: Any, plain: Any) -> None:
    (fast_rows, fast_sums), (plain_rows, plain_sums) = fast, plain
    assert fast_rows == plain_rows
    assert fast_sums.keys() == plain_sums.keys()
    for key, (n, total, squares) in plain_sums.items():
        assert fast_sums[key] == (
            n,
            pytest.approx(total, rel=1e-9, abs=1e-9),
            pytest.approx(squares, rel=1e-9),
        )


@pytest.mark.parametrize("n", [1, 40, 2 * SQLITE_ROWS + 123])
def test_fresh_records_are_stored_as_a_plain_insert_stores_them(engine: Engine, n: int) -> None:
    rows = records(n, seed=n)
    with rolled_back(engine) as conn:
        assert TransactionRepo(conn).insert_many(rows, fresh_ids=True) == n
        fast = stored(conn)
    with rolled_back(engine) as conn:
        plain_insert(conn, rows)
        plain = stored(conn)
    assert len(plain[0]) == n and plain[1]
    assert_same(fast, plain)


def test_duplicates_are_skipped_as_a_plain_insert_of_the_first_of_each_new_id_would(engine: Engine) -> None:
    earlier = records(300, seed=1)
    fresh = records(700, seed=3)[300:]
    # stored ids, and ids earlier in the batch, with other contents: the first stored is kept
    again = [r._replace(id=e.id) for r, e in zip(records(300, seed=2), earlier, strict=True)]
    repeated = [r._replace(id=f.id) for r, f in zip(records(700, seed=4)[300:400], fresh, strict=False)]
    batch = again[:100] + fresh + again[250:] + repeated
    first: dict[str, TxnRow] = {}
    for r in batch:
        first.setdefault(r[0], r)
    new = [r for r in first.values() if r[0] not in {e[0] for e in earlier}]
    with rolled_back(engine) as conn:
        repo = TransactionRepo(conn)
        assert repo.insert_many(earlier, fresh_ids=True) == 300
        assert repo.insert_many(batch) == len(new) == 400
        fast = stored(conn)
    with rolled_back(engine) as conn:
        plain_insert(conn, earlier + new)
        plain = stored(conn)
    assert_same(fast, plain)


def test_records_sent_in_chunks_are_stored_as_one_batch_would_be(engine: Engine) -> None:
    from charter.storage.txn_writes import groups_of

    rows = records(900, seed=5)
    values = [txn_moments_values(r) for r in rows]
    with rolled_back(engine) as conn:
        chunks = (list(groups_of(rows[s : s + 250], values[s : s + 250])) for s in range(0, 900, 250))
        assert TransactionRepo(conn).insert_chunks(chunks) == 900
        fast = stored(conn)
    with rolled_back(engine) as conn:
        plain_insert(conn, rows)
        plain = stored(conn)
    assert_same(fast, plain)


def txn_moments_values(row: TxnRow) -> dict[str, float]:
    import json

    return dict(json.loads(row[12]))


@pytest.mark.parametrize("n", [0, 1, 2, 255, 256, 499, SQLITE_ROWS, SQLITE_ROWS + 1, 5 * SQLITE_ROWS + 377])
def test_statement_sizes_add_up_and_are_few(n: int) -> None:
    sizes = list(_sizes(n))
    assert sum(sizes) == n and all(0 < s <= SQLITE_ROWS for s in sizes)
    assert set(sizes) <= {SQLITE_ROWS} | {1 << b for b in range(9)}


def test_metrics_json_of_many_is_each_ones_json() -> None:
    many = [{"a": 1.5, "b": -0.0}, {}, {"100%": 3e-9}, {"a": 2.0, "b": 1e300}, {'q"': 0.25}]
    assert metrics_jsons(many) == [metrics_json(m) for m in many]
    # the same names in every record (one template applied in C), and the cases that must leave it
    same = [{"quality": 0.1 * i, "format_ok": 1.0, "100%": -2.5e-7} for i in range(50)]
    assert metrics_jsons(same) == [metrics_json(m) for m in same]
    for odd in ({"format_ok": 1.0, "quality": 0.5, "100%": 1.0}, {"quality": 0.5}, {}, {**same[0], "x": 2.0}):
        mixed = [*same[:3], odd, *same[3:6]]
        assert metrics_jsons(mixed) == [metrics_json(m) for m in mixed]
        assert [json.loads(text) for text in metrics_jsons(mixed)] == mixed
    for alone in ([{"q": 0.5}] * 3, [{}] * 3, []):
        assert metrics_jsons(alone) == [metrics_json(m) for m in alone]


def test_a_deferred_write_leaves_its_checkpoint_to_a_thread_that_copies_the_whole_log(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter.storage.wal import AUTOCHECKPOINT, WalCheckpointer

    sqlite = engine.dialect.name == "sqlite"
    wal = WalCheckpointer(engine)
    done: list[tuple[int, int, int]] = []
    checkpoint = wal.checkpoint
    monkeypatch.setattr(wal, "checkpoint", lambda: done.append(checkpoint()) or done[-1])

    def autocheckpoint(conn: Connection) -> int:
        return int(conn.connection.dbapi_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0])  # type: ignore[union-attr]

    with engine.connect() as conn:
        with wal.deferred(conn), conn.begin():
            if sqlite:
                assert autocheckpoint(conn) == 0  # the commit copies nothing into the database file
            TransactionRepo(conn).insert_many(records(2000, seed=6), fresh_ids=True)
        if sqlite:
            assert autocheckpoint(conn) == AUTOCHECKPOINT  # the pooled connection as it was
    assert wal.wait(60)
    wal.close()
    if sqlite:
        (busy, logged, copied), *_ = done
        assert busy == 0 and logged == copied > 0  # the whole log, by the thread
    else:
        assert done == []  # PostgreSQL: nothing to do


def test_ids_made_in_bulk_are_the_ids_made_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same counters, prefixes and random bits, in the same order; the state carries over."""
    import charter.storage.transactions as module

    start = 1_790_000_000_123
    milliseconds = [start, start, start + 1, *[start + 2] * 5000, start + 2, start + 9]  # counter overflows
    made = []
    for bulk in (False, True):
        monkeypatch.setattr(module, "_uuid_state", [(start, 7, f"{start >> 16:08x}-{start & 0xFFFF:04x}-7")])
        monkeypatch.setattr(module, "_random_bits", random.Random(5).getrandbits)
        ids = (module.uuid7_many(milliseconds) if bulk
               else module.uuid7_texts([module.uuid7_parts(ms) for ms in milliseconds]))  # fmt: skip
        made.append((ids, module._uuid_state[0]))
    assert made[0] == made[1]
    assert len(set(made[0][0])) == len(milliseconds)

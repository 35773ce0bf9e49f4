"""The gate's and the charts' sums, kept at write time: `txn_moments`.

Every batch of transaction records that `TransactionRepo.insert_many` stores also adds, in the same
database transaction, its records' COUNT, SUM and SUM of squares per rollout, arm, metric and time
bucket, at two resolutions (`SPANS`: minutes and hours, buckets aligned to Unix time so that UTC
days, hours and minutes are made of whole buckets). Only records actually inserted count (a
duplicate id skipped by the insert adds nothing), and the sums are added with an upsert that
increments (`ON CONFLICT … DO UPDATE SET n = n + excluded.n`), so concurrent writers on PostgreSQL
never lose an update; keys are written in sorted order so two writers never deadlock.

Reads (`Cover`) split a window into whole hours, whole minutes around them and, at either end, the
part of a minute that the window only partly covers, which is read from the records themselves
(the `(rollout_id, arm, time)` index bounds that scan to one minute). A read therefore costs the
same however many records the rollout holds, and gives exactly what scanning every record would,
up to the order in which floating-point sums were added.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, repeat
from operator import floordiv, le, methodcaller, mul
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.storage.txn_writes import MetricRows, metric_rows

MINUTE = 60
HOUR = 3600
SPANS = (MINUTE, HOUR)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE_NS = MINUTE * 1_000_000_000

# (rollout_id, span, arm, metric, bucket) → [n, total, squares]
Sums = dict[tuple[str, int, str, str, int], list[float]]

_UPSERT = (
    "INSERT INTO txn_moments (rollout_id, span, arm, metric, bucket, n, total, squares) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) "
    "ON CONFLICT (rollout_id, span, arm, metric, bucket) DO UPDATE SET "
    "n = txn_moments.n + excluded.n, total = txn_moments.total + excluded.total, "
    "squares = txn_moments.squares + excluded.squares"
)
UPSERT_SQLITE = _UPSERT.format(p="?")
UPSERT_PG = _UPSERT.format(p="%s")


def accumulate(records: Iterable[tuple[str, str, datetime | int, Mapping[str, float]]]) -> Sums:
    """The sums of (rollout_id, arm, time, metrics) records, per minute and per hour (`time`: an
    aware datetime or Unix nanoseconds)."""
    by_arm: dict[tuple[str, str], tuple[list[datetime | int], list[Mapping[str, float]]]] = {}
    for rollout_id, arm, when, metrics in records:
        found = by_arm.get((rollout_id, arm))
        if found is None:
            found = by_arm[rollout_id, arm] = ([], [])
        found[0].append(when)
        found[1].append(metrics)
    out: Sums = {}
    for (rollout_id, arm), (times, values) in by_arm.items():
        add_group(out, rollout_id, arm, times, values)
    return out


_values = methodcaller("values")


def add_group(
    out: Sums,
    rollout_id: str,
    arm: str,
    times: Sequence[datetime | int],
    metrics: Sequence[Mapping[str, float]],
    same: MetricRows | None = None,
) -> None:
    """Add to `out` the sums of records of one rollout and arm (`times[i]`: when `metrics[i]` was
    recorded, an aware datetime or Unix nanoseconds; `same`: `metric_rows(metrics)`, when the
    caller has it).

    Records are first grouped by minute and the names of their metrics (an application reports
    the same few on every request), the keys made in C; then each group's columns are summed by
    `sum` and `map(mul, …)` in C — in record order, as adding them one by one would. When the
    records are in time order, are Unix nanoseconds and all report the same metrics (a recorder's
    batch), the minutes are runs of the batch, found by bisection, and nothing is done per record
    in Python."""
    if set(map(type, times)) <= {int}:
        in_minutes = list(map(floordiv, times, repeat(_MINUTE_NS)))
        if _add_runs(out, rollout_id, arm, in_minutes, same or metric_rows(metrics)):
            return
        minutes: Iterable[int] = in_minutes
    else:
        minutes = (_minute(when) for when in times)
    groups: dict[tuple[int, tuple[str, ...]], list[Mapping[str, float]]] = {}
    for key, values in zip(zip(minutes, map(tuple, metrics), strict=True), metrics, strict=True):
        group = groups.get(key)
        if group is None:
            groups[key] = [values]
        else:
            group.append(values)
    for (minute, names), rows in groups.items():
        if names:
            # no view kept per record: less for the GC
            _add_minute(out, rollout_id, arm, minute, names, map(_values, rows), len(rows))


def _add_runs(out: Sums, rollout_id: str, arm: str, minutes: list[int], same: MetricRows | None) -> bool:
    """`add_group`'s common case: minutes in order, the same metric names in every record (`same`).
    False (and nothing added) when it is not that case."""
    if same is None or not all(map(le, minutes, islice(minutes, 1, None))):
        return False
    names, rows = same
    if not names:
        return True
    start, n = 0, len(minutes)
    while start < n:
        minute = minutes[start]
        end = bisect_right(minutes, minute, start)
        run = rows if end - start == n else rows[start:end]
        _add_minute(out, rollout_id, arm, minute, names, run, end - start)
        start = end
    return True


def _add_minute(
    out: Sums,
    rollout_id: str,
    arm: str,
    minute: int,
    names: tuple[str, ...],
    rows: Iterable[Iterable[float]],
    n: int,
) -> None:
    """Add `n` records of one minute (`rows`: each record's values of `names`, in that order)."""
    bucket = minute * MINUTE
    hour = bucket // HOUR * HOUR
    for name, column in zip(names, zip(*rows, strict=True), strict=True):
        total, squares = sum(column), sum(map(mul, column, column))
        for span, start in ((MINUTE, bucket), (HOUR, hour)):
            acc = out.get((rollout_id, span, arm, name, start))
            if acc is None:
                out[rollout_id, span, arm, name, start] = [n, total, squares]
            else:
                acc[0] += n
                acc[1] += total
                acc[2] += squares


def _minute(when: datetime | int) -> int:
    """The Unix minute (number) of a time."""
    if type(when) is int:
        return when // _MINUTE_NS
    assert isinstance(when, datetime)
    return int(when.timestamp()) // MINUTE


def add(dbapi_cursor: Any, sums: Sums, *, sqlite: bool) -> None:
    """Add `sums` to the table (in the caller's transaction), in key order."""
    if not sums:
        return
    params = [(*key, int(v[0]), v[1], v[2]) for key, v in sorted(sums.items())]
    dbapi_cursor.executemany(UPSERT_SQLITE if sqlite else UPSERT_PG, params)


# --- backfill (benchmarks that fill `transactions` with SQL; migration 0004 has its own copy) ---

_BACKFILL_SQLITE = """
INSERT INTO txn_moments (rollout_id, span, arm, metric, bucket, n, total, squares)
SELECT rollout_id, {span}, arm, j.key,
       CAST(strftime('%s', substr(time, 1, 19)) AS INTEGER) / {span} * {span} AS b,
       COUNT(*), SUM(j.value), SUM(j.value * j.value)
FROM transactions, json_each(transactions.metrics) AS j
WHERE rollout_id IS NOT NULL AND j.type IN ('integer', 'real')
GROUP BY rollout_id, arm, j.key, b
"""
_BACKFILL_PG = """
INSERT INTO txn_moments (rollout_id, span, arm, metric, bucket, n, total, squares)
SELECT rollout_id, {span}, arm, j.key,
       CAST(FLOOR(EXTRACT(EPOCH FROM time) / {span}) AS BIGINT) * {span} AS b,
       COUNT(*), SUM(CAST(j.value AS double precision)),
       SUM(CAST(j.value AS double precision) * CAST(j.value AS double precision))
FROM transactions, json_each_text(CAST(transactions.metrics AS json)) AS j
WHERE rollout_id IS NOT NULL AND json_typeof(CAST(transactions.metrics AS json) -> j.key) = 'number'
GROUP BY rollout_id, arm, j.key, b
"""


def rebuild(conn: Connection) -> None:
    """Recompute the whole table from every stored record."""
    conn.exec_driver_sql("DELETE FROM txn_moments")
    template = _BACKFILL_SQLITE if conn.dialect.name == "sqlite" else _BACKFILL_PG
    for span in SPANS:
        conn.exec_driver_sql(template.format(span=span))


# --- reads -----------------------------------------------------------------------------------------

# the records' own sums over [lo, hi) (or [lo, hi] when `closed`): arm, metric → [n, total, squares]
RawScan = Callable[[datetime, datetime, bool], Mapping[tuple[str, str], Sequence[float]]]


@dataclass(frozen=True)
class Piece:
    """A part of a window: `span` seconds from `start` (span 0: the records from `start` to
    `stop`, read from the records themselves)."""

    span: int
    start: int  # Unix seconds (span > 0)
    lo: datetime | None = None
    hi: datetime | None = None
    closed: bool = False


def _seconds(when: datetime) -> int:
    return (when - EPOCH) // timedelta(seconds=1)


def _ceil(seconds: int, span: int) -> int:
    return -(-seconds // span) * span


def cover(start: datetime, end: datetime, same_label: Callable[[int, int], bool]) -> list[Piece]:
    """Split the window `start ≤ time ≤ end` into whole hours (where `same_label(lo, hi)` says the
    hour lies in one group), whole minutes, and the partial minutes at either end."""
    if end < start:
        return []
    seconds = _seconds(start) + (1 if start.microsecond else 0)
    first = _ceil(seconds, MINUTE)  # the first whole minute starts here
    last = _seconds(end) // MINUTE * MINUTE  # the minute `end` falls in starts here
    if first > last:  # start and end in the same minute
        return [Piece(0, 0, start, end, True)]
    first_dt = EPOCH + timedelta(seconds=first)
    pieces: list[Piece] = []
    if first_dt > start:
        pieces.append(Piece(0, 0, start, first_dt))
    t = first
    while t < last:
        if t % HOUR == 0 and t + HOUR <= last and same_label(t, t + HOUR - MINUTE):
            pieces.append(Piece(HOUR, t))
            t += HOUR
        else:
            pieces.append(Piece(MINUTE, t))
            t += MINUTE
    pieces.append(Piece(0, 0, EPOCH + timedelta(seconds=last), end, True))
    return pieces


def read(
    conn: Connection,
    *,
    rollout_id: str,
    arms: Sequence[str],
    metrics: Sequence[str],
    pieces: Sequence[Piece],
    label: Callable[[int], Any],
    scan: RawScan,
) -> dict[tuple[str, str, Any], list[float]]:
    """(arm, metric, label) → [n, total, squares] over `pieces`: whole buckets from the table, the
    partial minutes through `scan`."""
    out: dict[tuple[str, str, Any], list[float]] = {}

    def add_to(key: tuple[str, str, Any], n: float, total: float, squares: float) -> None:
        acc = out.get(key)
        if acc is None:
            out[key] = [n, total, squares]
        else:
            acc[0] += n
            acc[1] += total
            acc[2] += squares

    by_span: dict[int, list[int]] = {}
    for piece in pieces:
        if piece.span:
            by_span.setdefault(piece.span, []).append(piece.start)
            continue
        assert piece.lo is not None and piece.hi is not None
        group = label(_seconds(piece.lo) // MINUTE * MINUTE)
        for (arm, metric), (n, total, squares) in scan(piece.lo, piece.hi, piece.closed).items():
            add_to((arm, metric, group), n, total, squares)
    if not by_span or not arms or not metrics:
        return out
    table = sa.table(
        "txn_moments",
        *(sa.column(c) for c in ("rollout_id", "span", "arm", "metric", "bucket", "n", "total", "squares")),
    )
    c = table.c
    for span, starts in by_span.items():
        runs = _runs(sorted(starts), span)
        ranges = sa.or_(*(sa.and_(c.bucket >= lo, c.bucket <= hi) for lo, hi in runs))
        query = sa.select(c.arm, c.metric, c.bucket, c.n, c.total, c.squares).where(
            c.rollout_id == rollout_id,
            c.span == span,
            c.arm.in_(list(arms)),
            c.metric.in_(list(metrics)),
            ranges,
        )
        for arm, metric, bucket, n, total, squares in conn.execute(query):
            add_to((arm, metric, label(int(bucket))), n, total, squares)
    return out


def _runs(starts: list[int], span: int) -> list[tuple[int, int]]:
    """Consecutive bucket starts as (first, last) ranges."""
    runs: list[tuple[int, int]] = []
    for s in starts:
        if runs and runs[-1][1] + span == s:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs

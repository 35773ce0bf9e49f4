"""Transaction records: bulk writes, the gate's aggregates, lookups by id, sampled inputs.

Transaction records are data, not audit events: they are written in large batches by the
recorder's background thread (or by `charter txn ingest`), never one by one, and never through the
ORM-ish layers. Writes go straight to the driver, a routing decision's records at a time
(`charter.storage.txn_writes`: multi-row INSERTs on SQLite, `COPY … FROM STDIN` on PostgreSQL,
streamed chunk by chunk), and a batch whose ids may already be stored (a replayed spool, a
re-ingested file) skips the duplicates instead of failing (and leaves them out of the sums).

The gate never loads records: `daily_moments` returns, per arm, metric and UTC day, the moments
of the rollout's records in a window, from `COUNT(x), SUM(x), SUM(x·x)` that every insert adds to
`txn_moments` in its own transaction (`charter.storage.txn_moments`); `scan_daily_moments` computes
the same from the records (tests compare the two).

Ids are UUIDv7 (`uuid7`): 48 bits of Unix milliseconds, then a per-process counter and random bits,
so ids sort by time (within a millisecond, by creation in one process) and the primary-key
index is appended to rather than scattered.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.stats.moments import Moments
from charter.storage import txn_moments
from charter.storage.schema import transactions
from charter.storage.txn_writes import COLUMNS, Group, TxnRow, copy_text, groups_of, insert_sqlite, utc_text

K = TypeVar("K")


@dataclass(frozen=True)
class StoredTxn:
    """A record read back, with the slot and release named."""

    id: str
    time: datetime
    slot_id: int
    release_id: int
    arm: str
    rollout_id: str | None
    stage: str | None
    table_version: int | None
    stale: bool
    latency_ms: float | None
    error: str | None
    key: str | None
    metrics: dict[str, Any]
    inputs: dict[str, Any] | None
    parent_id: str | None


# --- UUIDv7 ---------------------------------------------------------------------------------------

# (last millisecond, counter within it, its formatted prefix), replaced as a whole: threads racing in
# the same millisecond may draw the same counter, which costs ordering, never uniqueness.
_uuid_state: list[tuple[int, int, str]] = [(-1, 0, "")]
# (formatted prefix: milliseconds and version, counter, 62 random bits)
UuidParts = tuple[str, int, int]
_random_bits = random.getrandbits  # the module's generator: seeded from the OS, re-seeded after fork


def uuid7(when: datetime | None = None, *, ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562) for `when` (or Unix milliseconds `ms`; default: now): 48-bit Unix
    milliseconds, version 7, a 12-bit counter that keeps ids made in the same millisecond by this
    process increasing, the variant, then 62 random bits (which alone make ids unique)."""
    if ms is None:
        ms = int(when.timestamp() * 1000) if when is not None else time.time_ns() // 1_000_000
    return uuid7_text(uuid7_parts(ms))


def uuid7_parts(ms: int) -> UuidParts:
    """A UUIDv7's parts for Unix milliseconds `ms`, made now (the counter orders ids by creation)
    but not yet formatted: the request path draws them, `uuid7_text` formats them later."""
    last, counter, prefix = _uuid_state[0]
    if ms == last and counter < 0xFFF:
        counter += 1
    else:
        counter, prefix = 0, _uuid_prefix(ms)
    _uuid_state[0] = (ms, counter, prefix)
    return prefix, counter, _random_bits(62)


def _uuid_prefix(ms: int) -> str:
    """A UUIDv7's text up to its counter: 48 bits of Unix milliseconds and the version."""
    return f"{ms >> 16 & 0xFFFF_FFFF:08x}-{ms & 0xFFFF:04x}-7"


_UUID_TEXT = "%s%03x-%04x-%012x"  # prefix, counter, variant and 14 random bits, 48 random bits


def uuid7_text(parts: UuidParts) -> str:
    """The UUID string of `uuid7_parts`' answer."""
    prefix, counter, bits = parts
    return _UUID_TEXT % (prefix, counter, 0x8000 | bits >> 48, bits & 0xFFFF_FFFF_FFFF)


def uuid7_texts(parts: Iterable[UuidParts]) -> list[str]:
    """`uuid7_text` of each, in one loop."""
    text, low = _UUID_TEXT, 0xFFFF_FFFF_FFFF
    return [text % (prefix, counter, 0x8000 | bits >> 48, bits & low) for prefix, counter, bits in parts]


def uuid7_many(milliseconds: Iterable[int]) -> list[str]:
    """`uuid7_text(uuid7_parts(ms))` for each of `milliseconds`, in order, in one loop (a bulk
    load makes tens of thousands at once)."""
    last, counter, prefix = _uuid_state[0]
    text, low, draw = _UUID_TEXT, 0xFFFF_FFFF_FFFF, _random_bits
    out: list[str] = []
    append = out.append
    for ms in milliseconds:
        if ms == last and counter < 0xFFF:
            counter += 1
        else:
            last, counter, prefix = ms, 0, _uuid_prefix(ms)
        bits = draw(62)
        append(text % (prefix, counter, 0x8000 | bits >> 48, bits & low))
    _uuid_state[0] = (last, counter, prefix)
    return out


def uuid7_time(text: str) -> datetime:
    """The millisecond a UUIDv7 was made for."""
    ms = int(text.replace("-", "")[:12], 16)
    return datetime.fromtimestamp(ms / 1000, UTC)


# --- the repository --------------------------------------------------------------------------------

_COPY_PG = f"COPY transactions ({', '.join(COLUMNS)}) FROM STDIN"
_COPY_STAGE_PG = f"COPY charter_txn_stage ({', '.join(COLUMNS)}) FROM STDIN"
_STAGE_PG = (
    "CREATE TEMP TABLE IF NOT EXISTS charter_txn_stage "
    "(LIKE transactions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_MERGE_PG = (
    f"INSERT INTO transactions ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM charter_txn_stage "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
CHUNK = 2_000  # records per chunk the recorder makes: PostgreSQL stores one while the next is made
Chunk = Sequence[Group]  # a chunk of records, grouped by decision


# built once: a trace reads one record by id, and building the statement cost more than running it
_GET = sa.select(transactions).where(transactions.c.id == sa.bindparam("id"))


class TransactionRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- writes ---------------------------------------------------------------------------------

    def insert_many(
        self,
        rows: Sequence[TxnRow],
        *,
        fresh_ids: bool = False,
        metrics: Sequence[Mapping[str, float]] | None = None,
    ) -> int:
        """Store `rows` in this transaction, with their sums in `txn_moments`; returns how many
        were new. A duplicate id (already stored, or earlier in `rows`) is skipped and adds nothing
        to the sums. `fresh_ids`: every id was just generated, so none can be stored already (and
        PostgreSQL may COPY straight into the table). `metrics`: each row's metrics as a dict, when
        the caller has them (else they are parsed from the rows' JSON)."""
        if not rows:
            return 0
        if not fresh_ids:
            keep = _first_of_each_id(rows)
            if len(keep) < len(rows):
                rows = [rows[i] for i in keep]
                if metrics is not None:
                    metrics = [metrics[i] for i in keep]
        values = metrics if metrics is not None else [_parsed(r[12]) for r in rows]
        if fresh_ids:
            return self.insert_chunks(
                list(groups_of(rows[start : start + CHUNK], values[start : start + CHUNK]))
                for start in range(0, len(rows), CHUNK)
            )
        return self._insert_known(list(groups_of(rows, values)))

    def insert_chunks(self, chunks: Iterable[Chunk]) -> int:
        """Store records whose ids were all just made (so none can be stored already), chunk by
        chunk, with their sums; returns how many were stored. `chunks` may be made as they are
        asked for: on PostgreSQL each is sent (in one COPY) as soon as it is made, and its sums
        added up while the server stores it, so the server works while the next one is made."""
        dbapi, sqlite = self._dbapi()
        sums: txn_moments.Sums = {}
        cursor = dbapi.cursor()
        try:
            if sqlite:
                before = dbapi.total_changes
                for chunk in chunks:
                    for group in chunk:
                        insert_sqlite(cursor, group)
                        _add_sums(sums, group, None)
                inserted = int(dbapi.total_changes - before)
            else:
                inserted = 0
                with cursor.copy(_COPY_PG) as copy:
                    for chunk in chunks:
                        copy.write("".join([copy_text(group) for group in chunk]))
                        for group in chunk:
                            _add_sums(sums, group, None)
                            inserted += len(group.ids)
            txn_moments.add(cursor, sums, sqlite=sqlite)
            return inserted
        finally:
            cursor.close()

    def _insert_known(self, groups: list[Group]) -> int:
        """Store records whose ids may be stored already (those are skipped: the first of each id
        is kept, and only records inserted here add to the sums)."""
        dbapi, sqlite = self._dbapi()
        count = sum(len(group.ids) for group in groups)
        stored: set[str] | None = None  # the ids inserted, when not all of them were
        cursor = dbapi.cursor()
        try:
            if sqlite:
                before = dbapi.total_changes
                last = cursor.execute("SELECT max(rowid) FROM transactions").fetchone()[0]
                for group in groups:
                    insert_sqlite(cursor, group)
                inserted = int(dbapi.total_changes - before)
                if inserted < count:
                    cursor.execute("SELECT id FROM transactions WHERE rowid > ?", (last or 0,))
                    stored = {i for (i,) in cursor.fetchall()}
            else:
                cursor.execute(_STAGE_PG)
                with cursor.copy(_COPY_STAGE_PG) as copy:
                    for group in groups:
                        copy.write(copy_text(group))
                cursor.execute(_MERGE_PG)
                stored = {i for (i,) in cursor.fetchall()}
                inserted = len(stored)
                cursor.execute("DELETE FROM charter_txn_stage")
            sums: txn_moments.Sums = {}
            for group in groups:
                _add_sums(sums, group, stored)
            txn_moments.add(cursor, sums, sqlite=sqlite)
            return inserted
        finally:
            cursor.close()

    def _dbapi(self) -> tuple[Any, bool]:
        dbapi: Any = self.conn.connection.dbapi_connection
        assert dbapi is not None
        return dbapi, self.conn.dialect.name == "sqlite"

    # --- reads ----------------------------------------------------------------------------------

    def get(self, txn_id: str) -> StoredTxn | None:
        row = self.conn.execute(_GET, {"id": txn_id}).one_or_none()
        if row is None:
            return None
        return StoredTxn(
            row.id,
            row.time,
            row.slot_id,
            row.release_id,
            row.arm,
            row.rollout_id,
            row.stage,
            row.table_version,
            bool(row.stale),
            row.latency_ms,
            row.error,
            row.key,
            json.loads(row.metrics),
            None if row.inputs is None else json.loads(row.inputs),
            row.parent_id,
        )

    def count(self, *, slot_id: int | None = None, rollout_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(transactions)
        if slot_id is not None:
            query = query.where(transactions.c.slot_id == slot_id)
        if rollout_id is not None:
            query = query.where(transactions.c.rollout_id == rollout_id)
        return int(self.conn.execute(query).scalar_one())

    def daily_moments(
        self,
        *,
        rollout_id: str,
        arms: Iterable[str],
        start: datetime,
        end: datetime,
        metrics: Sequence[str],
    ) -> dict[str, dict[str, dict[str, Moments]]]:
        """arm → metric → UTC day → Moments of the rollout's records with `start ≤ time ≤ end`,
        from the sums kept at write time (`txn_moments`): whole hours and minutes from the table,
        the partial minutes at either end from the records."""
        return self._covered(rollout_id, list(arms), start, end, metrics, _utc_day, lambda lo, hi: True)

    def bucket_moments(
        self,
        *,
        rollout_id: str,
        arms: Iterable[str],
        start: datetime,
        end: datetime,
        metrics: Sequence[str],
        width_seconds: float,
    ) -> dict[str, dict[str, dict[int, Moments]]]:
        """arm → metric → bucket → Moments, like `daily_moments` but grouped in buckets of
        `width_seconds` counted from `start` (bucket 0 starts at `start`): a time series for charts,
        however long or short the rollout. Read from `txn_moments` when `start` is on a whole
        minute and the width a whole number of minutes (else from the records)."""
        if width_seconds <= 0:
            raise ValueError("buckets need a positive width")
        origin = (start - txn_moments.EPOCH).total_seconds()
        if origin % txn_moments.MINUTE or width_seconds % txn_moments.MINUTE:
            return self.scan_bucket_moments(
                rollout_id=rollout_id, arms=arms, start=start, end=end, metrics=metrics,
                width_seconds=width_seconds,
            )  # fmt: skip
        first, width = int(origin), int(width_seconds)

        def bucket(seconds: int) -> int:
            return (seconds - first) // width

        return self._covered(
            rollout_id, list(arms), start, end, metrics, bucket, lambda lo, hi: bucket(lo) == bucket(hi)
        )

    def _covered(
        self,
        rollout_id: str,
        arms: list[str],
        start: datetime,
        end: datetime,
        metrics: Sequence[str],
        label: Callable[[int], K],
        same_label: Callable[[int, int], bool],
    ) -> dict[str, dict[str, dict[K, Moments]]]:
        out: dict[str, dict[str, dict[K, Moments]]] = {arm: defaultdict(dict) for arm in arms}
        if not metrics or not arms:
            return out

        def scan(lo: datetime, hi: datetime, closed: bool) -> dict[tuple[str, str], list[float]]:
            return self._scan_sums(rollout_id, arms, lo, hi, closed, metrics)

        sums = txn_moments.read(
            self.conn,
            rollout_id=rollout_id,
            arms=arms,
            metrics=metrics,
            pieces=txn_moments.cover(start, end, same_label),
            label=label,
            scan=scan,
        )
        for (arm, metric, key), (n, total, squares) in sums.items():
            if n:
                out[arm][metric][key] = Moments.from_sums(int(n), total, squares)
        return {arm: dict(by_metric) for arm, by_metric in out.items()}

    def _scan_sums(
        self,
        rollout_id: str,
        arms: list[str],
        lo: datetime,
        hi: datetime,
        closed: bool,
        metrics: Sequence[str],
    ) -> dict[tuple[str, str], list[float]]:
        """(arm, metric) → [COUNT, SUM, SUM of squares] of the records with lo ≤ time < hi (≤ hi
        when `closed`), read from the records (a partial minute: the index bounds the scan)."""
        found = self._grouped(rollout_id, arms, lo, hi, metrics, ("0", "0"), {}, int, closed=closed)
        return {(arm, metric): v for (arm, metric, _), v in found.items()}

    # --- the same answers from the records themselves (tests use them as the oracle) ---------------

    def scan_daily_moments(
        self,
        *,
        rollout_id: str,
        arms: Iterable[str],
        start: datetime,
        end: datetime,
        metrics: Sequence[str],
    ) -> dict[str, dict[str, dict[str, Moments]]]:
        """`daily_moments` computed by aggregating every record in the window."""
        day = ("substr(time, 1, 10)", "to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
        return _as_moments(
            list(arms), self._grouped(rollout_id, list(arms), start, end, metrics, day, {}, str)
        )

    def scan_bucket_moments(
        self,
        *,
        rollout_id: str,
        arms: Iterable[str],
        start: datetime,
        end: datetime,
        metrics: Sequence[str],
        width_seconds: float,
    ) -> dict[str, dict[str, dict[int, Moments]]]:
        """`bucket_moments` computed by aggregating every record in the window."""
        if width_seconds <= 0:
            raise ValueError("buckets need a positive width")
        bucket = (
            "CAST((julianday(time) - julianday(:start)) * 86400.0 / :width AS INTEGER)",
            "FLOOR(EXTRACT(EPOCH FROM (time - :start)) / :width)",
        )
        extra = {"width": float(width_seconds)}
        found = self._grouped(rollout_id, list(arms), start, end, metrics, bucket, extra, int)
        return _as_moments(list(arms), found)

    def _grouped(
        self,
        rollout_id: str,
        arms: list[str],
        start: datetime,
        end: datetime,
        metrics: Sequence[str],
        group: tuple[str, str],
        extra: dict[str, Any],
        label: Callable[[Any], K],
        *,
        closed: bool = True,
    ) -> dict[tuple[str, str, K], list[float]]:
        """(arm, metric, group) → [COUNT, SUM, SUM of squares] of each metric of the records with
        `start ≤ time ≤ end` (`< end` unless `closed`), computed over the records (`group`: the
        grouping expression over `time`, for SQLite and for PostgreSQL)."""
        out: dict[tuple[str, str, K], list[float]] = {}
        if not metrics or not arms:
            return out
        sqlite = self.conn.dialect.name == "sqlite"
        params: dict[str, Any] = {
            "rollout": rollout_id,
            "start": utc_text(start) if sqlite else start,
            "end": utc_text(end) if sqlite else end,
            **extra,
        }
        params.update({f"arm{i}": arm for i, arm in enumerate(arms)})
        where = (
            "WHERE rollout_id = :rollout AND arm IN ("
            + ", ".join(f":arm{i}" for i in range(len(arms)))
            + ") AND time >= :start AND time "
            + ("<=" if closed else "<")
            + " :end"
        )
        # The subqueries are kept from being merged into the aggregate (SQLite: LIMIT -1; PostgreSQL:
        # OFFSET 0), so each record's JSON is parsed once and each metric extracted once, not once
        # per aggregate that uses it (three times faster on PostgreSQL, the same results).
        if sqlite:
            params.update({f"path{i}": '$."' + m.replace('"', '""') + '"' for i, m in enumerate(metrics)})
            values = ", ".join(f"json_extract(metrics, :path{i}) AS m{i}" for i in range(len(metrics)))
            inner = f"SELECT arm, {group[0]} AS day, {values} FROM transactions {where} LIMIT -1"
        else:
            params.update({f"path{i}": m for i, m in enumerate(metrics)})
            values = ", ".join(
                f"CAST(j ->> :path{i} AS double precision) AS m{i}" for i in range(len(metrics))
            )
            inner = (
                f"SELECT arm, {group[1]} AS day, {values} FROM "
                f"(SELECT arm, time, CAST(metrics AS json) AS j FROM transactions {where} OFFSET 0) AS t "
                "OFFSET 0"
            )
        aggregates = ", ".join(f"COUNT(m{i}), SUM(m{i}), SUM(m{i} * m{i})" for i in range(len(metrics)))
        sql = f"SELECT arm, day, {aggregates} FROM ({inner}) AS v GROUP BY arm, day"
        for row in self.conn.execute(sa.text(sql), params):
            arm, key = row[0], label(row[1])
            for i, metric in enumerate(metrics):
                count, total, squares = row[2 + 3 * i : 5 + 3 * i]
                if count:
                    out[arm, metric, key] = [int(count), float(total), float(squares)]
        return out

    def inputs(
        self,
        slot_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100_000,
    ) -> list[dict[str, Any]]:
        """The sampled input features of a slot's served records, newest first (for drift)."""
        query = sa.select(transactions.c.inputs).where(
            transactions.c.slot_id == slot_id,
            transactions.c.inputs.is_not(None),
            transactions.c.arm != "shadow",
        )
        if since is not None:
            query = query.where(transactions.c.time >= since)
        if until is not None:
            query = query.where(transactions.c.time <= until)
        query = query.order_by(transactions.c.time.desc()).limit(limit)
        return [json.loads(text) for text in self.conn.execute(query).scalars()]


def _as_moments(
    arms: list[str], sums: Mapping[tuple[str, str, K], Sequence[float]]
) -> dict[str, dict[str, dict[K, Moments]]]:
    out: dict[str, dict[str, dict[K, Moments]]] = {arm: {} for arm in arms}
    for (arm, metric, key), (n, total, squares) in sums.items():
        out[arm].setdefault(metric, {})[key] = Moments.from_sums(int(n), total, squares)
    return out


def _utc_day(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def _add_sums(sums: txn_moments.Sums, group: Group, stored: set[str] | None) -> None:
    """Add a group's records (those in `stored`, when given) to `sums`."""
    _, _, arm, rollout_id, *_ = group.decision
    if rollout_id is None:
        return
    times, values, same = group.times, group.values, group.same
    if stored is not None:
        kept = [i for i, txn_id in enumerate(group.ids) if txn_id in stored]
        if len(kept) < len(times):
            times, values = [times[i] for i in kept], [values[i] for i in kept]
            same = None if same is None else (same[0], [same[1][i] for i in kept])
    txn_moments.add_group(sums, rollout_id, arm, times, values, same)


def _first_of_each_id(rows: Sequence[TxnRow]) -> list[int]:
    """The positions of the rows to store: the first of each id (the one INSERT keeps)."""
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        first.setdefault(r[0], i)
    return sorted(first.values()) if len(first) < len(rows) else list(range(len(rows)))


_NO_METRICS: Mapping[str, float] = {}


def _parsed(metrics: str) -> Mapping[str, float]:
    return _NO_METRICS if metrics == "{}" else json.loads(metrics)

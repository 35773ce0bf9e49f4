"""Transaction records: `with reg.transaction(SLOT, key=...) as txn:` routes and records.

    with reg.transaction("support-agent", key=user_id) as txn:
        prompt = txn.release.prompt("summarize-ticket")       # the version this request gets
        answer = call_model(txn.release.model, prompt.render(ticket=text), **txn.release.params())
        txn.record(quality=score(answer), format_ok=is_json(answer), cost=price, inputs={"len": len(text)})
        if txn.shadow is not None:                             # shadow stage: run the candidate too
            shadow_answer = ...                                # log it, never serve it
            txn.record_shadow(quality=..., format_ok=..., cost=...)

On exit the transaction is appended to an in-memory queue as it is: the request path pays for the
clock, the UUIDv7's parts (its text is made when `txn.id` is first read, usually by the writer),
the metrics' check and a deque append. A background thread turns the queue into records (id, time,
slot, release, arm, stage, routing-table version, stale flag, latency, error, key, metrics, sampled
inputs) and writes them in batches.

Flush policy (what a crash can lose):

- the writer thread wakes every `flush_interval` seconds (default 1 s), or as soon as
  `batch_size` transactions (default 10,000; a shadow run adds a second record) are pending, and
  writes everything pending in one database transaction;
- `reg.flush()` writes everything pending now; `reg.close()` flushes and stops the thread; an
  interpreter that exits normally flushes too (atexit);
- so a process killed without warning (SIGKILL, power loss, OOM) loses at most the records of
  the last `flush_interval` seconds (at most `batch_size` plus what arrived during one write);
  nothing that reached the database or the spool file is lost;
- when the store cannot be reached, a batch is appended to a local spool file
  (`CHARTER_HOME/spool/*.jsonl`, flushed and fsynced) and replayed, in order, the next time a
  write succeeds (by any process using the same home); records keep their ids, and ids already
  stored are skipped, so a replay never duplicates a record.

`reg.ingest(SLOT, FILE.jsonl)` bulk-loads records written elsewhere (`charter.service.ingest`;
the schema is in docs/rollouts.md).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextvars import Token
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from charter.clock import SystemClock
from charter.domain.routing import Arm
from charter.errors import InvalidInput
from charter.service.ingest import (
    IngestReport,
    check_metrics,
    ingest_items,
    ingest_lines,
    record_lines,
)
from charter.service.ingest_columns import MAX_ERROR
from charter.service.txn_context import CURRENT
from charter.storage.engine import WRITE
from charter.storage.store import Tx
from charter.storage.transactions import CHUNK, TransactionRepo, uuid7, uuid7_parts, uuid7_text, uuid7_texts
from charter.storage.txn_writes import Group, metric_rows, metrics_json_rows, metrics_jsons
from charter.storage.wal import WalCheckpointer

if TYPE_CHECKING:
    from charter.service.registry import Registry
    from charter.service.router import RouteDecision

log = logging.getLogger("charter.recorder")

DEFAULT_FLUSH_INTERVAL_S = 1.0
DEFAULT_BATCH_SIZE = 10_000
STALE_CLAIM_S = 600.0
_ARM_TEXT = {a: a.value for a in Arm}

_perf_counter = time.perf_counter


class Txn:
    """One routed request being served. `decision` is the router's; `release` serves the request;
    `shadow` is the candidate to run beside it during a shadow stage (else None).

    On exit the Txn itself is queued (the writer reads its fields): the request path pays for the
    clock, the UUIDv7's parts and a deque append; the id's text is made when first read."""

    __slots__ = (
        "_at", "_context", "_id", "_latency", "_recorder", "_sampled", "_shadow_id", "_started", "_uuid",
        "decision", "error", "fallback", "inputs", "key", "metrics", "shadow_metrics",
    )  # fmt: skip

    def __init__(
        self, recorder: RecordQueue, decision: RouteDecision, key: str | None, sampled: bool
    ) -> None:
        self._recorder = recorder
        self.decision = decision
        self.key = key
        # wall-clock nanoseconds (no datetime made on the request path), else the clock's time
        self._at: datetime | int
        if recorder.wall_clock:
            self._at = ns = time_ns()
            self._uuid = uuid7_parts(ns // 1_000_000)
        else:
            self._at = when = recorder.now()
            self._uuid = uuid7_parts(int(when.timestamp() * 1000))
        self._id: str | None = None
        self._shadow_id: str | None = None
        self._latency: float | None = None
        self.metrics: dict[str, float] = {}
        self.shadow_metrics: dict[str, float] | None = None
        self.inputs: dict[str, Any] | None = None
        self.error: str | None = None
        # something the request used came from a last known copy (the store was unreachable): the
        # record is stored with `stale` set, as when the routing table itself was stale
        self.fallback = False
        self._context: Token[Any] | None = None
        self._sampled = sampled
        self._started = _perf_counter()

    @property
    def id(self) -> str:
        """The record's id (a UUIDv7, as text)."""
        text = self._id
        if text is None:
            text = self._id = uuid7_text(self._uuid)
        return text

    @property
    def time(self) -> datetime:
        """When the request started (UTC)."""
        return _as_time(self._at)

    @property
    def release(self) -> Any:
        return self.decision.release

    @property
    def shadow(self) -> Any:
        return self.decision.shadow

    def record(self, inputs: Mapping[str, Any] | None = None, **metrics: Any) -> None:
        """Add metrics (and the request's input features, kept when this request is sampled)."""
        if metrics:
            checked = check_metrics(metrics)
            if not self.metrics:
                self.metrics = checked
            else:
                self.metrics.update(checked)
        if inputs is not None and self._sampled:
            self.inputs = dict(inputs)

    def record_shadow(self, **metrics: Any) -> None:
        """Metrics of the shadow run: recorded with arm `shadow`, never as the served output."""
        if self.decision.shadow is None:
            raise InvalidInput(
                "this transaction has no shadow release (txn.shadow is None): only a shadow stage runs one"
            )
        if self.shadow_metrics is None:
            self.shadow_metrics = {}
        self.shadow_metrics.update(check_metrics(metrics))

    def shadow_id(self) -> str:
        """The id of the shadow run's record (made once, when first asked for: by the writer)."""
        text = self._shadow_id
        if text is None:
            text = self._shadow_id = uuid7(self.time)
        return text

    def __enter__(self) -> Txn:
        self._context = CURRENT.set(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._latency = (_perf_counter() - self._started) * 1000.0
        if self._context is not None:
            CURRENT.reset(self._context)
            self._context = None
        if kind is not None:
            self.error = f"{kind.__name__}: {exc}"[:MAX_ERROR]
        self._recorder.submit(self)


@dataclass(frozen=True)
class FlushReport:
    written: int
    spooled: int
    replayed: int

    def as_dict(self) -> dict[str, int]:
        return {"written": self.written, "spooled": self.spooled, "replayed": self.replayed}


class RouterLike(Protocol):
    def route(self, slot: str, key: str | None = None) -> RouteDecision: ...

    def input_sample_rate(self, slot: str) -> float: ...


class RecordQueue:
    """The request path and the writer thread: what the embedded recorder and the remote one
    (`charter.client.routing.RemoteRecorder`) share. Subclasses say where the router is and how a
    batch is written (`flush`)."""

    def __init__(
        self, *, now: Callable[[], datetime], wall_clock: bool, flush_interval: float, batch_size: int
    ) -> None:
        self.flush_interval, self.batch_size = flush_interval, batch_size
        self.now = now
        self.wall_clock = wall_clock
        self._pending: deque[Txn] = deque()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()

    def router(self) -> RouterLike:
        raise NotImplementedError

    def flush(self) -> FlushReport:
        raise NotImplementedError

    # --- the request path -----------------------------------------------------------------------

    def transaction(self, slot: str, key: str | None = None) -> Txn:
        router = self.router()
        decision = router.route(slot, key)  # first: it may refresh the table and the sample rate
        rate = router.input_sample_rate(slot)
        return Txn(self, decision, key, rate >= 1.0 or (rate > 0 and random.random() < rate))

    def submit(self, txn: Txn) -> None:
        """Queue a finished transaction (its record, and its shadow run's if it has one)."""
        pending = self._pending
        pending.append(txn)
        if self._thread is None:
            self._start()
        elif len(pending) >= self.batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Records waiting for the writer."""
        return sum(1 if txn.shadow_metrics is None else 2 for txn in list(self._pending))

    def _drain(self) -> list[Txn]:
        batch: list[Txn] = []
        popleft = self._pending.popleft
        try:
            while True:
                batch.append(popleft())
        except IndexError:
            return batch

    # --- the writer -----------------------------------------------------------------------------

    def _start(self) -> None:
        with self._write_lock:
            if self._thread is not None:
                return
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="charter-recorder", daemon=True)
            self._thread.start()
            atexit.register(_close_at_exit, weakref.ref(self))

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the writer must survive anything; the records are spooled
                log.exception("charter recorder: writing transaction records failed")

    def close(self) -> None:
        """Flush and stop the writer thread."""
        self._stop = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self._thread = None
        self.flush()


class Recorder(RecordQueue):
    def __init__(
        self,
        registry: Registry,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
        batch_size: int = DEFAULT_BATCH_SIZE,
        spool: Path | None = None,
    ) -> None:
        super().__init__(
            now=registry.clock.now,
            wall_clock=isinstance(registry.clock, SystemClock),
            flush_interval=flush_interval,
            batch_size=batch_size,
        )
        self.registry = registry
        self.wal = WalCheckpointer(registry.store.engine)
        self.spool = spool or registry.settings.home / "spool"
        self._ids: dict[tuple[str, str], tuple[int, int]] = {}  # (slot, release digest) → ids
        self._served: dict[int, tuple[RouteDecision, tuple[Any, ...]]] = {}  # id(decision) → its fields
        self._streaming = False  # a batch's COPY is open: no statement may run on its connection
        driver: type[BaseException] = registry.store.engine.dialect.loaded_dbapi.Error
        self._unreachable: tuple[type[BaseException], ...] = (
            sa.exc.DBAPIError,
            sa.exc.TimeoutError,
            OSError,
            driver,
        )

    def router(self) -> RouterLike:
        return self.registry.router

    def close(self) -> None:
        super().close()
        self.wal.close()

    def flush(self) -> FlushReport:
        """Write everything pending (and replay the spool); what cannot be written is spooled."""
        with self._write_lock:
            batch = self._drain()
            written = replayed = 0
            if batch:
                try:
                    written = self._write(batch)
                except self._unreachable as exc:
                    log.warning("charter recorder: the store is unreachable (%s); spooling %d records",
                                str(exc).splitlines()[0][:200], len(batch))  # fmt: skip
                    self._spool(batch)
                    return FlushReport(0, len(batch), 0)
                except Exception:
                    self._spool(batch)  # never lose records, whatever went wrong; then say so
                    raise
            with contextlib.suppress(*self._unreachable):
                replayed = self._replay()
            return FlushReport(written, 0, replayed)

    def _write(self, batch: list[Txn]) -> int:
        engine = self.registry.store.engine
        # SQLite: the log is checkpointed after the commit by a thread of its own (storage/wal.py)
        with (
            engine.connect().execution_options(**{WRITE: True}) as conn,
            self.wal.deferred(conn),
            conn.begin(),
        ):
            # the decisions' ids first: no other statement can run on the connection during a COPY
            for d in {id(txn.decision): txn.decision for txn in batch}.values():
                self._served_fields(conn, d)
                if d.shadow is not None:
                    self._fields(conn, d, shadow=True)
            # chunks made as the repository asks for them: PostgreSQL stores one while the next is made
            self._streaming = True
            try:
                return TransactionRepo(conn).insert_chunks(
                    self._groups(conn, batch[start : start + CHUNK]) for start in range(0, len(batch), CHUNK)
                )
            finally:
                self._streaming = False

    def _groups(self, conn: Any, txns: list[Txn]) -> list[Group]:
        """The records of `txns` (and of their shadow runs) as stored, grouped by the fields a
        routing decision gives (slot and release ids, arm, rollout, stage, table version, stale),
        as columns. Those fields are looked up once per decision: the router hands out the same
        few decision objects."""
        by_decision: dict[tuple[int, bool], list[Txn]] = {}
        shadows: list[Txn] = []
        for txn in txns:
            key = (id(txn.decision), txn.fallback)
            found = by_decision.get(key)
            if found is None:
                by_decision[key] = [txn]
            else:
                found.append(txn)
            if txn.shadow_metrics is not None:
                shadows.append(txn)
        groups: list[Group] = []
        for group in by_decision.values():
            values = list(map(_METRICS, group))
            same = metric_rows(values)  # the same metrics on every record: JSON and sums from rows
            fields = _stale(self._served_fields(conn, group[0].decision), group[0].fallback)
            groups.append(Group(
                fields, uuid7_texts(map(_UUID, group)), list(map(_AT, group)),
                list(map(_LATENCY, group)), list(map(_ERROR, group)), list(map(_KEY, group)),
                metrics_jsons(values) if same is None else metrics_json_rows(*same),
                _inputs(list(map(_INPUTS, group))), [None] * len(group), values, same,
            ))  # fmt: skip
        if shadows:
            groups.extend(self._shadow_groups(conn, shadows))
        return groups

    def _shadow_groups(self, conn: Any, txns: list[Txn]) -> list[Group]:
        """The records of shadow runs (arm `shadow`, the candidate release, `parent_id` the served
        record's id)."""
        by_decision: dict[tuple[int, bool], list[Txn]] = {}
        for txn in txns:
            by_decision.setdefault((id(txn.decision), txn.fallback), []).append(txn)
        groups: list[Group] = []
        for group in by_decision.values():
            fields = _stale(self._fields(conn, group[0].decision, shadow=True), group[0].fallback)
            values = [txn.shadow_metrics or {} for txn in group]
            groups.append(Group(
                fields, [txn.shadow_id() for txn in group], list(map(_AT, group)), [None] * len(group),
                [None] * len(group), list(map(_KEY, group)), metrics_jsons(values), [None] * len(group),
                [txn.id for txn in group], values,
            ))  # fmt: skip
        return groups

    def _served_fields(self, conn: Any, d: RouteDecision) -> tuple[Any, ...]:
        """The fields of a decision's served record, looked up once per decision object."""
        served = self._served
        known = served.get(id(d))
        if known is None or known[0] is not d:
            if len(served) > 10_000:
                served.clear()
            known = served[id(d)] = (d, self._fields(conn, d, shadow=False))
        return known[1]

    def _fields(self, conn: Any, d: RouteDecision, *, shadow: bool) -> tuple[Any, ...]:
        """slot_id, release_id, arm, rollout_id, stage, table_version, stale of a decision's record."""
        if shadow and d.shadow is not None:
            release, arm = d.shadow.release, Arm.SHADOW.value
        else:
            release, arm = d.release.release, _ARM_TEXT[d.arm]
        ids = self._ids.get((d.slot, release.digest))
        if ids is None:
            ids = self._lookup(conn, d.slot, release.digest)
        return (ids[0], ids[1], arm, d.rollout, d.stage, d.table_version, d.stale)

    def _lookup(self, conn: Any, slot: str, digest: str) -> tuple[int, int]:
        if self._streaming:
            # psycopg holds the connection's lock for the whole COPY: a statement on it now would
            # wait for that lock forever (the flush would hang); fail instead, and the batch is spooled
            raise RuntimeError(
                f"charter recorder: release {digest[:12]} was looked up while its batch was being streamed; "
                "every decision's ids must be looked up before the COPY starts"
            )
        tx = Tx(conn, self.registry.clock, writable=True)
        record = tx.slots.release_by_digest(digest)
        if record is None:
            raise InvalidInput(f"release {digest[:12]} is not in this store")
        ids = self._ids[(slot, digest)] = (record.slot_id, record.id)
        return ids

    # --- the spool ------------------------------------------------------------------------------

    def _spool(self, batch: list[Txn]) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        path = self.spool / f"txn-{os.getpid()}-{threading.get_ident()}.jsonl"
        with path.open("a", encoding="utf-8") as out:
            for txn in batch:
                for fields in record_fields(txn):
                    out.write(json.dumps(fields, default=str) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _replay(self) -> int:
        """Write spooled records (every spool file in the folder, oldest first), then delete them.
        A file is claimed by renaming it, so two processes never replay the same one; a claim older
        than `STALE_CLAIM_S` (its process died) is taken over. A file that cannot be stored for
        another reason than an outage is set aside as `rejected-*.jsonl` (and logged)."""
        if not self.spool.is_dir():
            return 0
        now = time.time()
        files = list(self.spool.glob("txn-*.jsonl")) + [
            p for p in self.spool.glob("replaying-*.jsonl") if now - p.stat().st_mtime > STALE_CLAIM_S
        ]
        replayed = 0
        for path in sorted(files, key=lambda p: p.stat().st_mtime):
            claimed = path.with_name(f"replaying-{uuid.uuid4().hex[:8]}-{path.name.split('-', 2)[-1]}")
            try:
                path.rename(claimed)
                os.utime(claimed)  # the claim's time
            except OSError:
                continue  # another process claimed it
            try:
                replayed += self._replay_file(claimed)
            except self._unreachable:
                claimed.rename(path)  # still down: keep it for the next attempt
                raise
            except Exception:
                log.exception("charter recorder: spooled records in %s cannot be stored; set aside", claimed)
                claimed.rename(claimed.with_name("rejected-" + claimed.name))
                continue
            claimed.unlink()
        return replayed

    def _replay_file(self, path: Path) -> int:
        by_slot: dict[str, list[dict[str, Any]]] = {}
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    item = json.loads(line)
                    by_slot.setdefault(item["slot"], []).append(item)
        return sum(
            ingest_items(self.registry, slot, items, authorize_as=None).inserted
            for slot, items in by_slot.items()
        )

    # --- bulk ingest ----------------------------------------------------------------------------

    def ingest(self, slot: str, source: str | Path | Iterable[str]) -> IngestReport:
        """Load records from a JSONL file (or lines); see docs/rollouts.md for the schema."""
        started = time.perf_counter()
        with record_lines(source) as lines:
            report = ingest_lines(self.registry, slot, lines)
        return IngestReport(
            slot,
            report.lines,
            report.inserted,
            report.lines - report.inserted,
            report.by_arm or {},
            time.perf_counter() - started,
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _as_time(at: datetime | int) -> datetime:
    """A record's time: a datetime, or wall-clock nanoseconds since the epoch."""
    return at if isinstance(at, datetime) else _EPOCH + timedelta(microseconds=at // 1000)


_METRICS = attrgetter("metrics")
_UUID = attrgetter("_uuid")
_AT = attrgetter("_at")
_LATENCY = attrgetter("_latency")
_ERROR = attrgetter("error")
_KEY = attrgetter("key")
_INPUTS = attrgetter("inputs")


def _stale(fields: tuple[Any, ...], fallback: bool) -> Any:
    """A decision's record fields, marked stale when something the request used was a fallback."""
    return (*fields[:6], True) if fallback else fields


def _inputs(column: list[dict[str, Any] | None]) -> list[str | None]:
    """Sampled input features as JSON (most records have none)."""
    if column.count(None) == len(column):
        return column  # type: ignore[return-value]  # all None
    return [None if inputs is None else json.dumps(inputs, default=str) for inputs in column]


def _close_at_exit(ref: weakref.ref[RecordQueue]) -> None:
    recorder = ref()
    if recorder is not None:
        recorder.close()


def record_fields(txn: Txn) -> list[dict[str, Any]]:
    """A queued transaction's records (its own, then its shadow run's) as the JSON objects
    `charter txn ingest` reads (the spool's line format)."""
    d = txn.decision
    served = {
        "id": txn.id, "time": _as_time(txn._at).isoformat(), "slot": d.slot, "release": d.release.digest,
        "arm": d.arm.value, "rollout": d.rollout, "stage": d.stage, "table_version": d.table_version,
        "stale": d.stale or txn.fallback, "latency_ms": txn._latency, "error": txn.error, "key": txn.key,
        "metrics": txn.metrics, "inputs": txn.inputs, "parent_id": None,
    }  # fmt: skip
    if txn.shadow_metrics is None:
        return [served]
    release = d.shadow if d.shadow is not None else d.release
    shadow = {
        **served, "id": txn.shadow_id(), "release": release.digest, "arm": Arm.SHADOW.value,
        "latency_ms": None, "error": None, "metrics": txn.shadow_metrics, "inputs": None, "parent_id": txn.id,
    }  # fmt: skip
    return [served, shadow]

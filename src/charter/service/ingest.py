"""Bulk-loading transaction records: `charter txn ingest SLOT FILE.jsonl` and the recorder's spool.

One JSON object per line (the schema is in docs/rollouts.md): `time` and `release` are required;
the arm, rollout and stage default to what the slot was running at `time` — the rollout whose
baseline or candidate the release is, and its stage then (`_Timeline`). Records are validated and
stored in batches, each in one transaction; ids already stored are skipped. Lines of the common
shape are decoded and checked a column at a time (`ingest_columns`); the rest one by one (`_row`).
"""

from __future__ import annotations

import json
import sys
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, islice
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from charter.domain.roles import Action
from charter.domain.times import parse_time
from charter.errors import CharterError, InvalidInput
from charter.service.access import authorize
from charter.service.ingest_columns import (
    ARMS,
    BASELINE,
    CANDIDATE,
    EPOCH,
    MAX_ERROR,
    MAX_KEY,
    MAX_METRIC_NAME,
    SHADOW,
    Columns,
    Found,
    column_groups,
    decode,
)
from charter.service.releases import require_slot, resolve_release
from charter.storage.engine import WRITE
from charter.storage.slots import ReleaseRecord
from charter.storage.store import Tx
from charter.storage.transactions import CHUNK, uuid7_parts, uuid7_text
from charter.storage.txn_writes import Group, TxnRow, groups_of, metrics_json

if TYPE_CHECKING:
    from charter.service.registry import Registry

INGEST_BATCH = 50_000
_LARGEST = sys.float_info.max


def check_metrics(metrics: Mapping[str, Any], _longest: int = MAX_METRIC_NAME) -> dict[str, float]:
    """Metric values as finite floats (true/false count as 1/0); names of 1 to MAX_METRIC_NAME
    characters. On the request path: a float's check is `x - x == 0.0` (false for inf and nan)."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        kind = type(value)
        if kind is float and value - value == 0.0 and 0 < len(name) <= _longest:
            out[name] = value
        elif kind is int and 0 < len(name) <= _longest and -_LARGEST <= value <= _LARGEST:  # not bool
            out[name] = float(value)
        else:
            out[name] = _checked(name, value)
    return out


def _checked(name: str, value: Any) -> float:
    """One metric's value, or the error that says what is wrong with it."""
    if not 0 < len(name) <= MAX_METRIC_NAME:
        raise InvalidInput(
            f"metric name {name[:40]!r}{'…' if len(name) > 40 else ''} must have 1 to "
            f"{MAX_METRIC_NAME} characters"
        )
    kind = type(value)
    if kind is bool:
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and not isinstance(value, bool) and -_LARGEST <= value <= _LARGEST:
        return float(value)  # finite (nan fails both comparisons), and an integer that fits a float
    raise InvalidInput(f"metric {name}={value!r} is not a finite number (or true/false)")


@dataclass(frozen=True)
class IngestReport:
    slot: str
    lines: int
    inserted: int
    duplicates: int
    by_arm: Mapping[str, int]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "lines": self.lines,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "by_arm": dict(self.by_arm),
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.lines / self.seconds) if self.seconds > 0 else None,
        }


@dataclass
class _Counts:
    lines: int = 0
    inserted: int = 0
    by_arm: dict[str, int] | None = None


class _Timeline:
    """Which rollout (and stage) a record of a slot at a given time belongs to."""

    def __init__(self, tx: Tx, slot_id: int) -> None:
        self.spans: list[
            tuple[datetime, datetime | None, str, int, int, list[datetime], list[tuple[str, float]]]
        ] = []
        for record in tx.rollouts.rollouts_of(slot_id):
            steps = tx.rollouts.transitions(record.id)
            self.spans.append((
                record.started_at, record.ended_at, record.id, record.baseline_id, record.candidate_id,
                [t.at for t in steps], [(t.stage, t.traffic) for t in steps],
            ))  # fmt: skip
        self.starts = [s[0] for s in self.spans]

    def at(self, when: datetime) -> Found:
        i = bisect_right(self.starts, when) - 1
        if i < 0:
            return None
        _, end, rollout_id, baseline, candidate, times, stages = self.spans[i]
        if end is not None and when >= end:
            return None
        stage, traffic = stages[max(bisect_right(times, when) - 1, 0)]
        return rollout_id, baseline, candidate, stage, traffic

    def constant(self, first: datetime, last: datetime) -> tuple[bool, Found]:
        """Whether `at` gives the same answer for every time from `first` to `last` (no rollout
        starts, ends or changes stage in between, `first` included), and that answer."""
        i = bisect_right(self.starts, first) - 1
        if i != bisect_right(self.starts, last) - 1:
            return False, None
        if i < 0:
            return True, None
        end, times = self.spans[i][1], self.spans[i][5]
        if end is not None and first < end <= last:
            return False, None
        if bisect_right(times, first) != bisect_right(times, last):
            return False, None
        return True, self.at(first)


@contextmanager
def record_lines(source: str | Path | Iterable[str]) -> Iterator[Iterable[str]]:
    """The lines of a JSON Lines file (opened here), or the lines given."""
    if not isinstance(source, str | Path):
        yield source
        return
    path = Path(source)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        yield handle


def ingest_lines(
    registry: Registry, slot: str, lines: Iterable[str], *, first_line: int = 1, loaded: int = 0
) -> _Counts:
    """Load `lines` in batches of INGEST_BATCH lines, each in one transaction. A remote client
    sends a file's lines in such batches: `first_line` numbers the first of them, `loaded` counts
    the records it loaded before (both for the messages)."""
    total = _Counts(by_arm={})
    scan_once = cast(Any, json.JSONDecoder()).scan_once  # not in the stubs
    numbered = enumerate(lines, start=first_line)
    while part := list(islice(numbered, INGEST_BATCH)):
        # the whole batch is read first: a line that is not JSON refuses it before anything is stored
        chunks = [
            _read(part[at : at + CHUNK], scan_once, loaded + total.lines) for at in range(0, len(part), CHUNK)
        ]
        if any(chunk.size for chunk in chunks):
            _add(total, _store(registry, slot, chunks, authorize_as=registry.actor))
    return total


class _Chunk(NamedTuple):
    """Up to CHUNK lines of a batch: decoded as columns when they are all of the common shape
    (`ingest_columns`), else read by `json` as records (blank lines left out, `_line` set)."""

    texts: list[str]
    numbers: list[int]
    columns: Columns | None
    items: list[dict[str, Any]] | None

    @property
    def size(self) -> int:
        return len(self.texts) if self.items is None else len(self.items)

    def records(self) -> list[dict[str, Any]]:
        """The chunk's records as dicts (read again by `json` when it was decoded as columns)."""
        if self.items is not None:
            return self.items
        return [
            {**json.loads(text), "_line": number}
            for text, number in zip(self.texts, self.numbers, strict=True)
        ]


def _read(
    part: list[tuple[int, str]], scan_once: Callable[[str, int], tuple[Any, int]], loaded: int
) -> _Chunk:
    texts, numbers = list(map(_TEXT, part)), list(map(_NUMBER, part))
    columns = decode(texts)
    if columns is not None:
        return _Chunk(texts, numbers, columns, None)
    items = []
    for number, line in part:
        if not line.strip():
            continue
        try:
            item = _parse(line, scan_once)
        except ValueError as exc:
            raise InvalidInput(
                f"line {number} is not JSON: {exc}; nothing after line {loaded} was loaded"
            ) from None
        if not isinstance(item, dict):
            raise InvalidInput(f"line {number} must be a JSON object (see docs/rollouts.md)")
        item["_line"] = number
        items.append(item)
    return _Chunk(texts, numbers, None, items)


_NUMBER, _TEXT = itemgetter(0), itemgetter(1)


def _parse(line: str, scan_once: Callable[[str, int], tuple[Any, int]]) -> Any:
    """`json.loads(line)`, without its Python wrapper in the common case (a line that starts with
    its value); anything unusual, and every error, goes through `json.loads` itself. `scan_once`:
    a `json.JSONDecoder`'s, one per caller (it keeps a memo while it works)."""
    try:
        value, end = scan_once(line, 0)
    except (StopIteration, ValueError):
        return json.loads(line)
    if end != len(line) and not line[end:].isspace():
        return json.loads(line)  # raises: extra data
    return value


def _add(total: _Counts, part: _Counts) -> None:
    total.lines += part.lines
    total.inserted += part.inserted
    assert total.by_arm is not None and part.by_arm is not None
    for arm, n in part.by_arm.items():
        total.by_arm[arm] = total.by_arm.get(arm, 0) + n


def ingest_items(
    registry: Registry, slot: str, items: list[dict[str, Any]], *, authorize_as: str | None
) -> _Counts:
    """Validate and store records given as dicts (a spool's replay) in one transaction."""
    return _store(registry, slot, [_Chunk([], [], None, items)], authorize_as=authorize_as)


def _store(registry: Registry, slot: str, chunks: list[_Chunk], *, authorize_as: str | None) -> _Counts:
    """Validate and store one batch in one transaction (all or nothing).

    Records without ids (their ids are made here, so none can be stored already) are validated a
    chunk at a time as the repository asks for them: PostgreSQL stores one chunk while the next is
    validated. Nothing is read from the database once the chunks start (a COPY holds the
    connection), so every release the batch names is resolved first."""
    engine = registry.store.engine
    # SQLite: the log is checkpointed after the commit by a thread of its own (storage/wal.py)
    with (
        engine.connect().execution_options(**{WRITE: True}) as conn,
        registry.recorder.wal.deferred(conn),
        conn.begin(),
    ):
        tx = Tx(conn, registry.clock, writable=True)
        if authorize_as is not None:
            authorize(tx, authorize_as, Action.ROUTE)
        slot_record = require_slot(tx, slot)
        releases = _releases(tx, slot, chunks)
        timeline = _Timeline(tx, slot_record.id)
        by_arm: dict[str, int] = {}
        if any(chunk.items is not None and any("id" in item for item in chunk.items) for chunk in chunks):
            # ids given: some may be stored already, or repeated in the batch (`insert_many` skips them)
            items = chain.from_iterable(chunk.records() for chunk in chunks)
            rows, metrics = _rows(items, slot_record.id, releases, timeline, by_arm)
            inserted = tx.transactions.insert_many(rows, metrics=metrics)
        else:
            inserted = tx.transactions.insert_chunks(
                _groups(chunk, slot_record.id, releases, timeline, by_arm) for chunk in chunks
            )
    return _Counts(sum(chunk.size for chunk in chunks), inserted, by_arm)


def _releases(tx: Tx, slot: str, chunks: list[_Chunk]) -> dict[str, ReleaseRecord | CharterError]:
    """Each release reference the batch makes, resolved (or the error resolving it gives, raised
    by `_row` at the first line that makes it)."""
    refs: set[str] = set()
    for chunk in chunks:
        if chunk.columns is not None:
            refs.update(chunk.columns.releases)
        else:
            found = map(methodcaller("get", "release"), chunk.items or ())
            refs.update(_ref_text(ref) for ref in found if ref is not None)
    out: dict[str, ReleaseRecord | CharterError] = {}
    for ref in refs:
        try:
            out[ref] = resolve_release(tx, ref, slot=slot)
        except CharterError as exc:
            out[ref] = exc
    return out


def _ref_text(ref: Any) -> str:
    return ref if type(ref) is str else str(ref)


def _groups(
    chunk: _Chunk,
    slot_id: int,
    releases: dict[str, ReleaseRecord | CharterError],
    timeline: _Timeline,
    by_arm: dict[str, int],
) -> list[Group]:
    """A chunk's records (ids made here), as the repository stores them: a column at a time when
    they are all alike (`ingest_columns`), else one by one (which names the first bad line)."""
    if chunk.columns is not None:
        fast = column_groups(chunk.columns, slot_id, releases, timeline.constant)
        if fast is not None:
            groups, counts = fast
            for arm, n in counts.items():
                by_arm[arm] = by_arm.get(arm, 0) + n
            return groups
    rows, metrics = _rows(chunk.records(), slot_id, releases, timeline, by_arm)
    return list(groups_of(rows, metrics))


def _rows(
    items: Iterable[dict[str, Any]],
    slot_id: int,
    releases: dict[str, ReleaseRecord | CharterError],
    timeline: _Timeline,
    by_arm: dict[str, int],
) -> tuple[list[TxnRow], list[dict[str, float]]]:
    """Each record checked by itself (`_row`, which names the first bad line), counted per arm."""
    rows: list[TxnRow] = []
    metrics: list[dict[str, float]] = []
    for item in items:
        row, values = _row(slot_id, item, releases, timeline)
        rows.append(row)
        metrics.append(values)
        by_arm[row[4]] = by_arm.get(row[4], 0) + 1
    return rows, metrics


_KNOWN = frozenset({
    "id", "time", "release", "arm", "key", "metrics", "inputs", "latency_ms", "error", "stage", "rollout",
    "table_version", "stale", "parent_id", "slot", "_line",
})  # fmt: skip


def _row(
    slot_id: int, item: dict[str, Any], releases: dict[str, ReleaseRecord | CharterError], timeline: _Timeline
) -> tuple[TxnRow, dict[str, float]]:
    """One record, validated, as stored; and its metrics. Every check names the line; the common
    case (a few known fields, a known release) takes the shortest path."""
    get = item.get
    if not _KNOWN.issuperset(item):
        unknown = sorted(set(item) - _KNOWN)
        raise InvalidInput(
            f"{_where(item)}: unknown field(s) {', '.join(unknown)}; see docs/rollouts.md for the schema"
        )
    raw_time, ref = get("time"), get("release")
    if raw_time is None or ref is None:
        raise InvalidInput(f"{_where(item)}: `time` (ISO 8601) and `release` (a digest prefix) are required")
    try:
        when = _time(raw_time)
    except (InvalidInput, TypeError, ValueError):
        raise InvalidInput(
            f"{_where(item)}: time {raw_time!r} is not ISO 8601 (2026-03-01T14:30:00Z)"
        ) from None
    release = releases[_ref_text(ref)]
    if isinstance(release, CharterError):
        raise InvalidInput(f"{_where(item)}: {release.message}") from None
    raw_metrics = get("metrics")
    try:
        metrics = check_metrics(raw_metrics) if raw_metrics else {}
    except InvalidInput as exc:
        raise InvalidInput(f"{_where(item)}: {exc.message}") from None
    except AttributeError:
        raise InvalidInput(f"{_where(item)}: metrics must be an object of metric → number") from None
    inputs = get("inputs")
    if inputs is not None and not isinstance(inputs, dict):
        raise InvalidInput(f"{_where(item)}: inputs must be an object of feature → value")
    found = timeline.at(when)
    rollout = get("rollout")
    if rollout is not None:
        rollout = _optional(item, "rollout", _uuid_text)
    stage = get("stage")
    arm = get("arm")
    if found is not None and release.id in (found[1], found[2]):
        rollout = rollout or found[0]
        stage = stage or found[3]
        if arm is None:
            arm = BASELINE if release.id == found[1] else (SHADOW if found[4] == 0 else CANDIDATE)
    arm = arm or BASELINE
    if arm not in ARMS:
        raise InvalidInput(f"{_where(item)}: arm {arm!r} is not one of baseline, candidate, shadow")
    # stored as Unix nanoseconds (exact; the databases' text and the sums are made faster from them)
    since = when - EPOCH
    ns = ((since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds) * 1000
    txn_id = get("id")
    if txn_id is None:
        txn_id = uuid7_text(uuid7_parts(ns // 1_000_000))
    else:
        try:
            txn_id = str(uuid.UUID(str(txn_id)))
        except ValueError:
            raise InvalidInput(f"{_where(item)}: id {txn_id!r} is not a UUID") from None
    table_version, latency, error, key, parent = (
        get("table_version"), get("latency_ms"), get("error"), get("key"), get("parent_id"),
    )  # fmt: skip
    row = (
        txn_id,
        ns,
        slot_id,
        release.id,
        arm,
        rollout,
        stage,
        None if table_version is None else _optional(item, "table_version", int),
        bool(get("stale", False)),
        None if latency is None else _optional(item, "latency_ms", float),
        None if error is None else str(error)[:MAX_ERROR],
        None if key is None else str(key)[:MAX_KEY],
        metrics_json(metrics),
        None if inputs is None else json.dumps(inputs, default=str),
        None if parent is None else _optional(item, "parent_id", _uuid_text),
    )
    return row, metrics  # type: ignore[return-value]  # a plain tuple in TxnRow's order: cheaper


def _where(item: Mapping[str, Any]) -> str:
    return f"line {item.get('_line', '?')}"


def _uuid_text(value: Any) -> str:
    return str(uuid.UUID(str(value)))


def _optional(item: Mapping[str, Any], key: str, kind: Callable[[Any], Any]) -> Any:
    value = item.get(key)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float
        expected = "a UUID" if kind is _uuid_text else f"a valid {getattr(kind, '__name__', 'value')}"
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "…"
        raise InvalidInput(f"line {item.get('_line', '?')}: {key} {shown} is not {expected}") from None


def _time(value: Any) -> datetime:
    if type(value) is str:  # the common case first
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return parse_time(value)
        if when.tzinfo is UTC:
            return when
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return parse_time(text)
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when if when.tzinfo is UTC else when.astimezone(UTC)

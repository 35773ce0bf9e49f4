"""Transaction records as the databases take them: a batch grouped by routing decision, each group
as SQLite statements or PostgreSQL COPY text, and the texts of times and metrics.

A batch's records come from a few routing decisions, and seven of a record's fields (slot, release,
arm, rollout, stage, routing-table version, stale: `Group.decision`) are the same for all the
records of one decision. A batch is therefore written a group at a time, as columns (`Group`),
with the decision's fields given once:

- SQLite: `INSERT … SELECT ?, …, column1, … FROM (VALUES (…), (…), …)` of up to `SQLITE_ROWS`
  records, binding each record's eight own values and the decision's seven once (an `executemany`
  of the 15-column INSERT binds every value and runs the statement once per record: about 1.7
  times the CPU, measured with pre-built rows);
- PostgreSQL: COPY text whose lines are joined in C from the group's columns (a text column is
  checked for characters to escape once, as one string).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import repeat
from json.encoder import encode_basestring_ascii as _quote
from operator import itemgetter
from typing import Any, NamedTuple, cast, overload

COLUMNS = (
    "id",
    "time",
    "slot_id",
    "release_id",
    "arm",
    "rollout_id",
    "stage",
    "table_version",
    "stale",
    "latency_ms",
    "error",
    "key",
    "metrics",
    "inputs",
    "parent_id",
)


class TxnRow(NamedTuple):
    """One record as stored. `metrics` and `inputs` are JSON text; `time` is aware UTC, or Unix
    nanoseconds (what the recorder's wall clock gives: formatted for the database without making a
    datetime)."""

    id: str
    time: datetime | int
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
    metrics: str
    inputs: str | None
    parent_id: str | None


# metric names, and each record's values of them in that order (`metric_rows`)
MetricRows = tuple[tuple[str, ...], list[tuple[float, ...]]]

# slot_id, release_id, arm, rollout_id, stage, table_version, stale
Decision = tuple[int, int, str, str | None, str | None, int | None, bool]
_DECISION: Any = itemgetter(2, 3, 4, 5, 6, 7, 8)


class Group(NamedTuple):
    """Records of one routing decision, as columns (each as long as `ids`); `values`: each
    record's metrics as a dict (`metrics` holds them as JSON); `same`, when every record reports
    the same metrics: their names and each record's values (`metric_rows`), so that the sums need
    no dict per record (`values` may then be a `RowDicts` made from them)."""

    decision: Decision
    ids: Sequence[str]
    times: Sequence[datetime | int]
    latencies: Sequence[float | None]
    errors: Sequence[str | None]
    keys: Sequence[str | None]
    metrics: Sequence[str]
    inputs: Sequence[str | None]
    parents: Sequence[str | None]
    values: Sequence[Mapping[str, float]]
    same: MetricRows | None = None


def groups_of(rows: Sequence[TxnRow], values: Sequence[Mapping[str, float]]) -> Iterator[Group]:
    """`rows` (and their metrics as dicts) grouped by decision, each group in the rows' order."""
    positions: dict[Decision, list[int]] = {}
    for i, decision in enumerate(map(_DECISION, rows)):
        found = positions.get(decision)
        if found is None:
            positions[decision] = [i]
        else:
            found.append(i)
    for decision, where in positions.items():
        if len(where) == len(rows):
            picked, metrics = rows, values
        else:
            picked, metrics = [rows[i] for i in where], [values[i] for i in where]
        c: list[Any] = list(zip(*picked, strict=True))  # the columns, in COLUMNS order
        yield Group(decision, c[0], c[1], c[9], c[10], c[11], c[12], c[13], c[14], metrics)


# --- times -----------------------------------------------------------------------------------------

# Unix second → "YYYY-MM-DD HH:MM:SS" UTC: records come in time order, so a batch needs few of them.
_SECONDS: dict[int, str] = {}


def _second_text(second: int) -> str:
    text = _SECONDS.get(second)
    if text is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        text = _SECONDS[second] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
    return text


def utc_text(when: datetime | int) -> str:
    """A time as "YYYY-MM-DD HH:MM:SS.ffffff" UTC: how SQLAlchemy stores it in SQLite (so ranges
    compare as text), and with "+00" PostgreSQL's text of it. `when`: aware, or Unix nanoseconds
    (truncated to microseconds, as a datetime would be)."""
    return utc_texts((when,))[0]


def utc_texts(times: Iterable[datetime | int], suffix: str = "") -> list[str]:
    """`utc_text` of each time, followed by `suffix`, in one loop (the second's text is reused)."""
    out: list[str] = []
    append = out.append
    last, prefix = -1, ""
    for when in times:
        if type(when) is int:
            second, micros = divmod(when // 1000, 1_000_000)
            if second != last:
                last, prefix = second, _second_text(second) + "."
            append("%s%06d%s" % (prefix, micros, suffix))  # noqa: UP031  # faster than an f-string here
        else:
            assert isinstance(when, datetime)
            utc = when if when.tzinfo is UTC else when.astimezone(UTC)
            append(utc.isoformat(" ", "microseconds")[:26] + suffix)  # without the "+00:00"
    return out


# --- metrics ---------------------------------------------------------------------------------------

# metric names (in order) → "%r" template of the JSON object: applications report the same few
# metrics on every request, so each record's JSON is one dict lookup and one `%` away.
_TEMPLATES: dict[tuple[str, ...], str] = {(): "{}"}


def _template(names: tuple[str, ...]) -> str:
    template = _TEMPLATES.get(names)
    if template is None:
        if len(_TEMPLATES) >= 1024:
            _TEMPLATES.clear()
            _TEMPLATES[()] = "{}"
        template = "{" + ",".join([_quote(name).replace("%", "%%") + ":%r" for name in names]) + "}"
        _TEMPLATES[names] = template
    return template


def metrics_json(metrics: Mapping[str, float]) -> str:
    """Metrics (finite floats, as `check_metrics` returns them) as compact JSON. Built by hand: a
    float's repr is its JSON, and the C string encoder quotes the names (once per set of names)."""
    return _template(tuple(metrics)) % tuple(metrics.values())


class RowDicts(Sequence[Mapping[str, float]]):
    """Records' metrics as dicts, made when one is asked for from `metric_rows`' answer (the
    column paths keep no dict per record)."""

    def __init__(self, names: tuple[str, ...], rows: Sequence[tuple[float, ...]]) -> None:
        self.names, self.rows = names, rows

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> Mapping[str, float]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Mapping[str, float]]: ...

    def __getitem__(self, i: int | slice) -> Mapping[str, float] | Sequence[Mapping[str, float]]:
        if isinstance(i, slice):
            return RowDicts(self.names, self.rows[i])
        return dict(zip(self.names, self.rows[i], strict=True))


def metric_rows(metrics: Sequence[Mapping[str, float]]) -> MetricRows | None:
    """When every record reports the same metrics in the same order (an application reports the
    same few on every request): their names, and each record's values in that order, taken in C
    (`itemgetter`); else None."""
    if not metrics:
        return None
    names = tuple(metrics[0])
    if not all(map(names.__eq__, map(tuple, metrics))):
        return None
    if not names:
        return names, [()] * len(metrics)
    if len(names) == 1:
        return names, list(zip(map(itemgetter(names[0]), metrics)))
    return names, list(map(itemgetter(*names), metrics))


def metrics_json_rows(names: tuple[str, ...], rows: Iterable[tuple[float, ...]]) -> list[str]:
    """The JSON of records that report the metrics `names` (`rows`: each record's values of them,
    in that order): one template, applied in C."""
    return list(map(_template(names).__mod__, rows))


def metrics_jsons(metrics: Sequence[Mapping[str, float]]) -> list[str]:
    """`metrics_json` of each: when all have the same names, one template applied in C."""
    same = metric_rows(metrics)
    if same is not None:
        return metrics_json_rows(*same)
    templates = _TEMPLATES
    out: list[str] = []
    append = out.append
    for values in metrics:
        names = tuple(values)
        template = templates.get(names)
        if template is None:
            template = _template(names)
        append(template % tuple(values.values()))
    return out


# --- SQLite ----------------------------------------------------------------------------------------

SQLITE_ROWS = 500  # records per statement: 4,007 parameters (SQLite allows 32,766)
_OWN = 8  # a record's own values: id, time, latency_ms, error, key, metrics, inputs, parent_id
_SQLITE_HEAD = (
    f"INSERT OR IGNORE INTO transactions ({', '.join(COLUMNS)}) SELECT column1, column2, "
    "?, ?, ?, ?, ?, ?, ?, column3, column4, column5, column6, column7, column8 FROM (VALUES "
)
_SQLITE_STATEMENTS: dict[int, str] = {}


def _sqlite_statement(rows: int) -> str:
    sql = _SQLITE_STATEMENTS.get(rows)
    if sql is None:
        sql = _SQLITE_STATEMENTS[rows] = _SQLITE_HEAD + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows) + ")"
    return sql


def _sizes(n: int) -> Iterator[int]:
    """Statement sizes that add up to `n`: whole SQLITE_ROWS, then powers of two (so at most a
    dozen distinct statements are ever prepared)."""
    yield from repeat(SQLITE_ROWS, n // SQLITE_ROWS)
    rest = n % SQLITE_ROWS
    bit = 1 << rest.bit_length()
    while rest:
        bit >>= 1
        if rest & bit:
            yield bit
            rest -= bit


def insert_sqlite(cursor: Any, group: Group) -> None:
    """INSERT OR IGNORE the group's records (a DB-API cursor of sqlite3)."""
    n = len(group.ids)
    values: list[Any] = [None] * (_OWN * n)
    values[0::_OWN] = group.ids
    values[1::_OWN] = utc_texts(group.times)
    for i, column in enumerate(group[3:9], start=2):
        values[i::_OWN] = column
    decision = list(group.decision)
    start = 0
    for size in _sizes(n):
        cursor.execute(_sqlite_statement(size), decision + values[start : start + _OWN * size])
        start += _OWN * size


# --- PostgreSQL ------------------------------------------------------------------------------------

_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escaped(value: str) -> str:
    """A text value in PostgreSQL's COPY text format (most need no escape: checked first, in C)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _texts(column: Sequence[str | None]) -> Sequence[str]:
    """A text column in COPY's text format: escaped where needed, NULL as \\N."""
    nulls = column.count(None)
    if nulls == len(column):
        return list(repeat(_NULL, nulls))
    joined = "".join([v for v in column if v is not None] if nulls else column)  # type: ignore[arg-type]
    if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:  # one scan of the column
        column = [None if v is None else _escaped(v) for v in column]
    if nulls:
        return [_NULL if v is None else v for v in column]
    return cast(Sequence[str], column)


def _numbers(column: Sequence[float | None]) -> Iterable[str]:
    if None in column:
        return [_NULL if v is None else repr(v) for v in column]
    return map(repr, column)


def copy_text(group: Group) -> str:
    """The group's records in COPY's text format, in COLUMNS order."""
    slot_id, release_id, arm, rollout, stage, version, stale = group.decision
    decision = "\t".join((
        str(slot_id), str(release_id), arm, _NULL if rollout is None else rollout,
        _NULL if stage is None else _escaped(stage), _NULL if version is None else str(version),
        "t" if stale else "f",
    ))  # fmt: skip
    lines = map(
        "\t".join,
        zip(
            group.ids,
            utc_texts(group.times, "+00"),
            repeat(decision),
            _numbers(group.latencies),
            _texts(group.errors),
            _texts(group.keys),
            _texts(group.metrics),
            _texts(group.inputs),
            _texts(group.parents),
        ),
    )
    return "\n".join(lines) + "\n"

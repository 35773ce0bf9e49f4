"""`txn ingest`'s common case, a column at a time: lines of a file that all look alike.

A file written by one application has the same shape on every line: a time in ISO 8601, a release
prefix, a key, the same few metrics, perhaps latency, error and inputs. Such lines are decoded by
msgspec straight into a typed record (`Line`: unknown fields, and values of another type, are
refused in C, six times faster than `json.loads`), a chunk at a time (`decode`), and kept as
columns (`Columns`); every further check `ingest._row` makes per record is then made once per
column (`column_groups`), and the records come out as the `Group`s the writer stores.

Only what is certainly valid takes this path, and it stores exactly what `ingest._row` would: a
chunk with anything unusual (a field `Line` does not have, such as `id`; a value of another type,
such as true/false for a metric; a blank line; a time `fromisoformat` does not read; metrics that
differ between records; a release that does not resolve; a rollout's transition inside the chunk)
is read again by `json` and checked record by record, which also gives the error for the first bad
line. msgspec refuses every text `json.loads` refuses, and reads the same values from the rest
(`tests/test_ingest_columns.py` checks both on random lines); what it refuses that `json` reads
(NaN, numbers beyond a double, lone surrogates) goes the slow way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from math import isfinite
from operator import attrgetter, floordiv, itemgetter, mul, sub
from typing import Any, NamedTuple

import msgspec

from charter.domain.routing import Arm
from charter.errors import CharterError
from charter.storage.slots import ReleaseRecord
from charter.storage.transactions import uuid7_many
from charter.storage.txn_writes import Decision, Group, MetricRows, RowDicts, metric_rows, metrics_json_rows

MAX_ERROR = 2000
MAX_KEY = 200
MAX_METRIC_NAME = 200  # txn_moments.metric
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ARMS = frozenset(a.value for a in Arm)
BASELINE, CANDIDATE, SHADOW = Arm.BASELINE.value, Arm.CANDIDATE.value, Arm.SHADOW.value

_NONE: type = type(None)
_US = timedelta(microseconds=1)
_ZONE = attrgetter("tzinfo")

# what the rollout timeline says of a time: (rollout id, baseline id, candidate id, stage, traffic)
Found = tuple[str, int, int, str, float] | None


class Line(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A line of the common shape (docs/rollouts.md has the whole schema). Numbers may be written
    as integers (read as floats, as `_row` converts them); `slot` is ignored, as by `_row`."""

    time: str
    release: str
    metrics: dict[str, float] | None = None
    key: str | None = None
    latency_ms: float | None = None
    error: str | None = None
    arm: str | None = None
    inputs: dict[str, Any] | None = None
    slot: Any = None


class Columns(NamedTuple):
    """A chunk of `Line`s, a list per field; the metrics as names and each record's values (no
    dict kept per record: a batch's dicts alive at once cost the garbage collector more than
    making them)."""

    times: list[str]
    releases: list[str]
    metrics: MetricRows
    keys: list[str | None]
    latencies: list[float | None]
    errors: list[str | None]
    arms: list[str | None]
    inputs: list[dict[str, Any] | None]


_DECODE = msgspec.json.Decoder(Line).decode
_FIELDS = [
    attrgetter(name) for name in ("time", "release", "metrics", "key", "latency_ms", "error", "arm", "inputs")
]


def decode(texts: Sequence[str]) -> Columns | None:
    """The lines as columns, when every one is a `Line` and all report the same metrics (of 1 to
    MAX_METRIC_NAME characters); else None: read them with `json`."""
    try:
        lines = list(map(_DECODE, texts))
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeEncodeError):  # a lone surrogate
        return None
    times, releases, metrics, *rest = (list(map(field, lines)) for field in _FIELDS)
    if None in metrics:
        metrics = [{} if m is None else m for m in metrics]
    same = metric_rows(metrics)
    if same is None or not all(0 < len(name) <= MAX_METRIC_NAME for name in same[0]):
        return None
    return Columns(times, releases, same, *rest)


def column_groups(
    columns: Columns,
    slot_id: int,
    releases: Mapping[str, ReleaseRecord | CharterError],
    rollout_of: Callable[[datetime, datetime], tuple[bool, Found]],
) -> tuple[list[Group], dict[str, int]] | None:
    """The records of a chunk as groups (and their count per arm), or None when the chunk is not
    certainly valid and alike. `releases`: release reference → its record (or the error resolving
    it gave); `rollout_of(first, last)`: whether one rollout answer holds for every time in that
    range, and that answer (`ingest._Timeline.constant`)."""
    n = len(columns.times)
    when = _times(columns.times)
    if not n or when is None:
        return None
    refs, arms = columns.releases, columns.arms
    records: dict[str, ReleaseRecord] = {}
    for ref in set(refs):
        record = releases.get(ref)
        if not isinstance(record, ReleaseRecord):
            return None  # a release that does not resolve: `_row` says which line names it
        records[ref] = record
    alike, found = rollout_of(min(when), max(when))
    if not alike:
        return None
    decisions: dict[tuple[str, str | None], Decision] = {}
    for ref, arm in set(zip(refs, arms, strict=True)):
        decision = _decision(slot_id, records[ref].id, arm, found)
        if decision is None:
            return None
        decisions[ref, arm] = decision
    names, rows = columns.metrics
    if names and not all(map(isfinite, chain.from_iterable(rows))):
        return None
    if _longest(columns.keys) > MAX_KEY or _longest(columns.errors) > MAX_ERROR:
        return None
    texts = metrics_json_rows(names, rows)
    inputs = [None if v is None else json.dumps(v, default=str) for v in columns.inputs]
    # exact Unix nanoseconds, as `_row` makes them; ids from their milliseconds, in record order
    ns = list(map(mul, map(floordiv, map(sub, when, repeat(EPOCH)), repeat(_US)), repeat(1000)))
    ids = uuid7_many(map(floordiv, ns, repeat(1_000_000)))
    own: tuple[Sequence[Any], ...] = (
        ids, ns, columns.latencies, columns.errors, columns.keys, texts, inputs, [None] * n, rows,
    )  # fmt: skip
    if len(decisions) == 1:
        (decision,) = decisions.values()
        return [_group(decision, names, own)], {decision[2]: n}
    where: dict[tuple[str, str | None], list[int]] = {key: [] for key in decisions}
    for i, key in enumerate(zip(refs, arms, strict=True)):
        where[key].append(i)
    groups: list[Group] = []
    by_arm: dict[str, int] = {}
    for key, picked in where.items():
        decision = decisions[key]
        pick = _picker(picked)
        groups.append(_group(decision, names, [pick(column) for column in own]))
        by_arm[decision[2]] = by_arm.get(decision[2], 0) + len(picked)
    return groups, by_arm


def _group(decision: Decision, names: tuple[str, ...], own: Sequence[Sequence[Any]]) -> Group:
    """A group of records; `own`: their columns in Group's order, the last the metrics' rows."""
    ids, times, latencies, errors, keys, texts, inputs, parents, rows = own
    same = (names, list(rows))
    return Group(decision, ids, times, latencies, errors, keys, texts, inputs, parents, RowDicts(*same), same)


def _picker(positions: list[int]) -> Callable[[Sequence[Any]], list[Any]]:
    """A function that takes the items at `positions` of a sequence (in C)."""
    if len(positions) == 1:
        (only,) = positions
        return lambda column: [column[only]]
    get = itemgetter(*positions)
    return lambda column: list(get(column))


def _times(raw: list[str]) -> list[datetime] | None:
    """ISO 8601 texts as aware UTC times (no zone: UTC), or None when one is not such a text."""
    try:
        when = list(map(datetime.fromisoformat, raw))
    except ValueError:
        return None  # other formats (and errors): `_row`
    if set(map(_ZONE, when)) != {UTC}:
        when = [t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC) for t in when]
    return when


def _decision(slot_id: int, release_id: int, arm: str | None, found: Found) -> Decision | None:
    """The fields of a record of this release (and `arm`, as given) then, as `_row` derives them."""
    rollout = stage = None
    if found is not None and release_id in (found[1], found[2]):
        rollout, stage = found[0], found[3]
        if arm is None:
            arm = BASELINE if release_id == found[1] else (SHADOW if found[4] == 0 else CANDIDATE)
    arm = arm or BASELINE
    if arm not in ARMS:
        return None
    return (slot_id, release_id, arm, rollout, stage, None, False)


def _longest(texts: list[str | None]) -> int:
    return max(map(len, filter(None, texts)), default=0)

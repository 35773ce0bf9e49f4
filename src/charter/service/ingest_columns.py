"""`txn ingest`'s common case, a column at a time: a slice of a file's records that all look alike.

A file written by one application has the same shape on every line: a time in ISO 8601, a release
prefix, a key, the same few metrics, perhaps latency, error and inputs. For such a slice every
check `ingest._row` makes per record is made once per column, in C (`map`, `set` of the types,
`itemgetter`), and the records come out as `Group`s, the columns the writer stores.

Only what is certainly valid takes this path, and it stores exactly what `ingest._row` would: any
slice with anything unusual (another field, a time `fromisoformat` does not read, a true/false
metric, metrics that differ between records, a release that does not resolve, a rollout's
transition inside the slice) is handed back (`None`) and goes through `_row`, which also gives
the error for the first bad line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from math import isfinite
from operator import attrgetter, floordiv, methodcaller, mul, sub
from typing import Any

from charter.domain.routing import Arm
from charter.errors import CharterError
from charter.storage.slots import ReleaseRecord
from charter.storage.transactions import uuid7_parts, uuid7_texts
from charter.storage.txn_writes import Decision, Group, metric_rows, metrics_json_rows

MAX_ERROR = 2000
MAX_KEY = 200
MAX_METRIC_NAME = 200  # txn_moments.metric
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ARMS = frozenset(a.value for a in Arm)
BASELINE, CANDIDATE, SHADOW = Arm.BASELINE.value, Arm.CANDIDATE.value, Arm.SHADOW.value

# the fields a record may have and still take this path (`id`, `rollout`, `stage`, `table_version`,
# `stale`, `parent_id` and `slot` are written by replays and by hand: `_row` reads them)
_FIELDS = frozenset({"time", "release", "arm", "key", "metrics", "inputs", "latency_ms", "error", "_line"})
_NONE: type = type(None)
_US = timedelta(microseconds=1)
_ZONE = attrgetter("tzinfo")

# what the rollout timeline says of a time: (rollout id, baseline id, candidate id, stage, traffic)
Found = tuple[str, int, int, str, float] | None


def column_groups(
    items: Sequence[Mapping[str, Any]],
    slot_id: int,
    releases: Mapping[str, ReleaseRecord | CharterError],
    rollout_of: Callable[[datetime, datetime], tuple[bool, Found]],
) -> tuple[list[Group], dict[str, int]] | None:
    """The records of `items` as groups (and their count per arm), or None when the slice is not
    certainly valid and alike. `releases`: release reference → its record (or the error resolving
    it gave); `rollout_of(first, last)`: whether one rollout answer holds for every time in that
    range, and that answer (`ingest._Timeline.constant`)."""
    if not items or not _FIELDS.issuperset(set().union(*items)):
        return None
    n = len(items)
    when = _times(_column(items, "time"))
    refs = _column(items, "release")
    if when is None or set(map(type, refs)) != {str}:
        return None
    records: dict[str, ReleaseRecord] = {}
    for ref in set(refs):
        record = releases.get(ref)
        if not isinstance(record, ReleaseRecord):
            return None  # a release that does not resolve: `_row` says which line names it
        records[ref] = record
    alike, found = rollout_of(min(when), max(when))
    arms = _column(items, "arm")
    if not alike or not set(map(type, arms)) <= {str, _NONE}:
        return None
    decisions: dict[tuple[str, str | None], Decision] = {}
    for ref, arm in set(zip(refs, arms, strict=True)):
        decision = _decision(slot_id, records[ref].id, arm, found)
        if decision is None:
            return None
        decisions[ref, arm] = decision
    metrics = _metrics(_column(items, "metrics"))
    keys = _texts(_column(items, "key"), MAX_KEY)
    errors = _texts(_column(items, "error"), MAX_ERROR)
    latencies = _numbers(_column(items, "latency_ms"))
    inputs = _inputs(_column(items, "inputs"))
    if metrics is None or keys is None or errors is None or latencies is None or inputs is None:
        return None
    texts, values = metrics
    # exact Unix nanoseconds, as `_row` makes them; ids from their milliseconds, in record order
    ns = list(map(mul, map(floordiv, map(sub, when, repeat(EPOCH)), repeat(_US)), repeat(1000)))
    ids = uuid7_texts(map(uuid7_parts, map(floordiv, ns, repeat(1_000_000))))
    columns: tuple[list[Any], ...] = (ids, ns, latencies, errors, keys, texts, inputs, [None] * n, values)
    if len(decisions) == 1:
        (decision,) = decisions.values()
        return [Group(decision, *columns)], {decision[2]: n}
    where: dict[tuple[str, str | None], list[int]] = {key: [] for key in decisions}
    for i, key in enumerate(zip(refs, arms, strict=True)):
        where[key].append(i)
    groups: list[Group] = []
    by_arm: dict[str, int] = {}
    for key, picked in where.items():
        decision = decisions[key]
        picks = [[column[i] for i in picked] for column in columns]
        groups.append(Group(decision, *picks))
        by_arm[decision[2]] = by_arm.get(decision[2], 0) + len(picked)
    return groups, by_arm


def _column(items: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    return list(map(methodcaller("get", name), items))


def _times(raw: list[Any]) -> list[datetime] | None:
    """ISO 8601 texts as aware UTC times (no zone: UTC), or None when one is not such a text."""
    if set(map(type, raw)) != {str}:
        return None
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


def _metrics(raw: list[Any]) -> tuple[list[str], list[dict[str, float]]] | None:
    """Each record's metrics as JSON and as a dict, when every record has the same names (of 1 to
    MAX_METRIC_NAME characters) with finite numbers (true/false: `_row`)."""
    kinds = set(map(type, raw))
    if not kinds <= {dict, _NONE}:
        return None
    if _NONE in kinds:
        raw = [{} if m is None else m for m in raw]
    same = metric_rows(raw)
    if same is None:
        return None
    names, rows = same
    if not all(0 < len(name) <= MAX_METRIC_NAME for name in names):
        return None
    if names:
        flat = list(chain.from_iterable(rows))
        kinds = set(map(type, flat))
        if not kinds <= {float, int}:
            return None
        try:
            if not all(map(isfinite, flat)):
                return None
            if int in kinds:
                floats = [tuple(map(float, column)) for column in zip(*rows, strict=True)]
                rows = list(zip(*floats, strict=True))
        except OverflowError:  # an integer too large for a float
            return None
    return metrics_json_rows(names, rows), list(map(dict, map(zip, repeat(names), rows)))


def _texts(raw: list[Any], longest: int) -> list[Any] | None:
    """A column of optional texts, when none is longer than `longest` (else `_row` cuts them)."""
    kinds = set(map(type, raw))
    if kinds == {_NONE}:
        return raw
    if not kinds <= {str, _NONE} or max(map(len, filter(None, raw)), default=0) > longest:
        return None
    return raw


def _numbers(raw: list[Any]) -> list[float | None] | None:
    kinds = set(map(type, raw))
    if kinds == {_NONE}:
        return raw
    if not kinds <= {float, int, _NONE}:
        return None
    try:
        return [None if v is None else float(v) for v in raw]
    except OverflowError:
        return None


def _inputs(raw: list[Any]) -> list[str | None] | None:
    kinds = set(map(type, raw))
    if kinds == {_NONE}:
        return raw
    if not kinds <= {dict, _NONE}:
        return None
    return [None if v is None else json.dumps(v, default=str) for v in raw]

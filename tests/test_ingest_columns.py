"""`txn ingest`'s column path (`charter.service.ingest_columns`: lines decoded by msgspec, checked a
column at a time) stores exactly what reading each line with `json` and validating it by itself
(`ingest._row`) stores, takes every chunk of the common shape, and never accepts a chunk that `_row`
refuses: random chunks of good, odd and bad records. And msgspec reads what `json` reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from charter.errors import CharterError, InvalidInput, NotFound
from charter.service.ingest import _row, _Timeline
from charter.service.ingest_columns import column_groups, decode
from charter.storage.slots import ReleaseRecord
from charter.storage.transactions import uuid7_time
from charter.storage.txn_writes import Group, groups_of

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SLOT_ID = 3
ROLLOUT_1 = "0190aaaa-0000-7000-8000-000000000001"
ROLLOUT_2 = "0190aaaa-0000-7000-8000-000000000002"


def release(release_id: int, digest: str) -> ReleaseRecord:
    return ReleaseRecord(release_id, SLOT_ID, "agent", digest, {}, 1, (), {}, None, None, T0, "olga")


class Resolved(dict[str, ReleaseRecord | CharterError]):
    """What `ingest._releases` gives: every reference a batch makes, resolved or refused."""

    def __missing__(self, ref: str) -> CharterError:
        return NotFound(f"release {ref}")


RELEASES = Resolved({
    "aaaaaaaaaaaa": release(10, "a" * 64),  # production, then baseline of both rollouts
    "bbbbbbbbbbbb": release(11, "b" * 64),  # candidate of the first rollout
    "cccccccccccc": release(12, "c" * 64),  # candidate of the second
    "dddddddddddd": release(13, "d" * 64),  # in no rollout
    "eeeeeeeeeeee": NotFound("release eeeeeeeeeeee"),
})  # fmt: skip


def timeline() -> _Timeline:
    """Rollout 1: shadow from 10:10, canary 5 % from 10:30, ended 10:50; rollout 2: shadow from
    11:00, still running."""
    line = object.__new__(_Timeline)
    minute = timedelta(minutes=1)
    line.spans = [
        (T0 + 10 * minute, T0 + 50 * minute, ROLLOUT_1, 10, 11, [T0 + 10 * minute, T0 + 30 * minute],
         [("shadow", 0.0), ("canary-micro", 5.0)]),
        (T0 + 60 * minute, None, ROLLOUT_2, 10, 12, [T0 + 60 * minute], [("shadow", 0.0)]),
    ]  # fmt: skip
    line.starts = [s[0] for s in line.spans]
    return line


# a batch's times: within one stretch where nothing changes (the column path's case), or anywhere
STRETCHES = [(0, 9), (12, 29), (31, 49), (51, 59), (61, 120)]
ZONES = ["Z", "+00:00", "", "+05:30", "-07:00"]


@st.composite
def times(draw: Any, stretch: tuple[int, int] | None) -> Any:
    low, high = stretch or (0, 120)
    when = T0 + timedelta(minutes=draw(st.integers(low, high)), microseconds=draw(st.integers(0, 59_999_999)))
    zone = draw(st.sampled_from(ZONES))
    if zone in ("Z", "+00:00", ""):
        text = when.replace(tzinfo=None).isoformat() + zone
    else:
        offset = datetime.fromisoformat("2026-01-01T00:00:00" + zone).utcoffset()
        assert offset is not None
        text = (when + offset).replace(tzinfo=None).isoformat() + zone
    return text


NAMES = ("quality", "format_ok", "cost")


@st.composite
def plain_record(draw: Any, stretch: tuple[int, int], names: tuple[str, ...]) -> dict[str, Any]:
    """A record of the common shape: what an application's export has on every line."""
    record: dict[str, Any] = {
        "time": draw(times(stretch)),
        "release": draw(st.sampled_from(["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"])),
        "metrics": {name: draw(st.floats(-5, 5) | st.integers(0, 3)) for name in names},
    }
    for field, value in (
        ("key", st.text(max_size=30)),
        ("latency_ms", st.floats(0, 1e4) | st.integers(0, 10**4)),
        ("error", st.text(max_size=40)),
        ("inputs", st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3)),
        ("arm", st.sampled_from(["baseline", "candidate", "shadow"])),
    ):
        if draw(st.booleans()):
            record[field] = draw(st.none() | value)
    return record


ODD: list[tuple[str, Any]] = [
    ("time", "yesterday"),
    ("time", "2026-03-02 10:00"),
    ("time", 1_767_000_000),
    ("time", None),
    ("release", "eeeeeeeeeeee"),
    ("release", "zz"),
    ("release", 12345678),
    ("release", ["a"]),
    ("arm", "left"),
    ("arm", ""),
    ("key", "k" * 250),
    ("key", 42),
    ("error", "e" * 2100),
    ("latency_ms", "12.5"),
    ("latency_ms", True),
    ("inputs", [1, 2]),
    ("metrics", {"quality": True}),
    ("metrics", {"quality": "high"}),
    ("metrics", {"quality": 10**400}),
    ("metrics", {"q" * 201: 1.0}),
    ("metrics", {"cost": 0.5, "quality": 0.5}),
    ("metrics", {}),
    ("metrics", None),
    ("metrics", [1, 2]),
    ("id", "0190aaaa-0000-7000-8000-0000000000ff"),
    ("stage", "canary"),
    ("colour", "red"),
]


# whole lines that are not what `json.dumps` of a record writes
_GOOD = (
    '{"time": "2026-03-02T10:15:00Z", "release": "aaaaaaaaaaaa", "metrics": {"quality": 1, "format_ok": 0.5, '
    '"cost": 2}'
)
RAW = [
    "",
    "   ",
    '{"time": "2026-03-02T10:15:00Z", "release": "aaaaaaaaaaaa", "key": "\ud800"}',  # a lone surrogate
    "{not json",
    "[1, 2]",
    '"text"',
    _GOOD + ', "metrics": {"quality": NaN}}',
    _GOOD + ', "latency_ms": 1e400}',
    _GOOD + ', "key": "\\ud800"}',
    _GOOD + ', "time": "2026-03-02T10:16:00Z"}',  # a repeated field: the last one counts
    _GOOD + "} x",
    _GOOD + "}{}",
    "  " + _GOOD + "}  ",
    _GOOD + ', "latency_ms": 12345678901234567890123}',
    _GOOD + ', "latency_ms": 1' + "0" * 400 + "}",  # too large for a float: refused, by name
    _GOOD + ', "inputs": {"n": 123456789012345678901234567890, "x": [1.5, null, {"y": "é"}]}}',
]


def by_rows(lines: list[str]) -> tuple[list[Group], dict[str, int]]:
    """What reading each line with `json` and validating it by itself gives (the reference)."""
    rows, metrics, by_arm = [], [], {}
    line = timeline()
    for number, text in enumerate(lines, start=1):
        item = json.loads(text)
        if not isinstance(item, dict):
            raise InvalidInput(f"line {number} must be a JSON object")
        row, values = _row(SLOT_ID, {**item, "_line": number}, RELEASES, line)
        rows.append(row)
        metrics.append(values)
        by_arm[row[4]] = by_arm.get(row[4], 0) + 1
    return list(groups_of(rows, metrics)), by_arm


def records(groups: list[Group]) -> list[tuple[Any, ...]]:
    """Every record the groups hold, without its id (made afresh by each path), in a fixed order."""
    out = []
    for g in groups:
        for i in range(len(g.ids)):
            out.append((
                g.decision, g.times[i], g.latencies[i], g.errors[i], g.keys[i], g.metrics[i],
                g.inputs[i], g.parents[i], tuple(g.values[i].items()),
            ))  # fmt: skip
    return sorted(out, key=repr)


def check_ids(groups: list[Group]) -> None:
    ids = [i for g in groups for i in g.ids]
    assert len(set(ids)) == len(ids)
    for g in groups:
        for txn_id, ns in zip(g.ids, g.times, strict=True):
            assert isinstance(ns, int)
            assert uuid7_time(txn_id) == datetime.fromtimestamp(ns // 1_000_000 / 1000, UTC)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), stretch=st.sampled_from(STRETCHES), names=st.sampled_from([NAMES, ("quality",), ()]))
def test_a_batch_of_the_common_shape_takes_the_column_path_and_stores_what_the_rows_would(
    data: Any, stretch: tuple[int, int], names: tuple[str, ...]
) -> None:
    items = data.draw(st.lists(plain_record(stretch, names), min_size=1, max_size=40))
    lines = [json.dumps(item) for item in items]
    expected, expected_arms = by_rows(lines)
    columns = decode(lines)
    assert columns is not None, "lines of the common shape must decode as columns"
    found = column_groups(columns, SLOT_ID, RELEASES, timeline().constant)
    assert found is not None, "a batch of the common shape must take the column path"
    groups, by_arm = found
    assert records(groups) == records(expected) and by_arm == expected_arms
    check_ids(groups)
    for g in groups:
        assert [json.loads(text) for text in g.metrics] == [dict(v) for v in g.values]


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    stretch=st.sampled_from([*STRETCHES, None]),
    odd=st.lists(st.tuples(st.integers(0, 39), st.sampled_from(ODD)), max_size=3),
    raw=st.lists(st.tuples(st.integers(0, 39), st.sampled_from(RAW)), max_size=2),
)
def test_a_batch_the_rows_refuse_is_never_taken_and_any_batch_taken_stores_what_the_rows_would(
    data: Any,
    stretch: tuple[int, int] | None,
    odd: list[tuple[int, tuple[str, Any]]],
    raw: list[tuple[int, str]],
) -> None:
    items = data.draw(st.lists(plain_record(stretch or (0, 120), NAMES), min_size=1, max_size=40))
    for at, (field, value) in odd:
        items[at % len(items)][field] = value
    lines = [json.dumps(item) for item in items]
    for at, text in raw:
        lines[at % len(lines)] = text
    try:
        expected: tuple[list[Group], dict[str, int]] | None = by_rows(lines)
    except (InvalidInput, NotFound, ValueError):  # ValueError: not JSON
        expected = None
    columns = decode(lines)
    found = None if columns is None else column_groups(columns, SLOT_ID, RELEASES, timeline().constant)
    if expected is None:
        assert found is None, "the column path took a batch that validating each record refuses"
    elif found is not None:
        assert records(found[0]) == records(expected[0]) and found[1] == expected[1]
        check_ids(found[0])


def test_a_rollout_that_starts_changes_stage_or_ends_inside_a_batch_sends_it_to_the_rows() -> None:
    line = timeline()
    minute = timedelta(minutes=1)
    for first, last in [(5, 15), (25, 35), (45, 55), (55, 65), (0, 70)]:
        assert line.constant(T0 + first * minute, T0 + last * minute)[0] is False
    for first, last in STRETCHES:
        alike, found = line.constant(T0 + first * minute, T0 + last * minute)
        assert alike and found == line.at(T0 + first * minute) == line.at(T0 + last * minute)
    # the instant a stage starts belongs to it, and the instant a rollout ends does not
    assert line.constant(T0 + 30 * minute, T0 + 31 * minute) == (True, line.at(T0 + 30 * minute))
    assert line.constant(T0 + 50 * minute, T0 + 51 * minute) == (True, None)
    assert line.constant(T0 + 29 * minute, T0 + 30 * minute)[0] is False


json_texts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
).map(json.dumps)


@settings(max_examples=400, deadline=None)
@given(
    text=json_texts
    | st.text(alphabet='{}[]":,.-+eE0123456789 \\tnulrsfaINy\u00e9\ud800', max_size=40)
    | st.builds(lambda a, b: a[: len(a) // 2] + b, json_texts, st.text(max_size=5))
)
def test_msgspec_reads_what_json_reads_and_refuses_what_json_refuses(text: str) -> None:
    import msgspec

    try:
        found = msgspec.json.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeEncodeError):
        return  # the slow way: `json` reads it, or says why not
    assert repr(found) == repr(json.loads(text))

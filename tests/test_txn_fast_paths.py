"""The request path's and the writer's shortcuts give exactly what the plain code gives: times kept
as wall-clock nanoseconds, metrics JSON from a cached template, ids formatted when first read,
decision fields looked up once per decision."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.clock import ManualClock
from charter.errors import InvalidInput
from charter.service.ingest import _time, check_metrics
from charter.service.registry import Registry
from charter.stats.moments import Moments
from charter.storage import txn_moments
from charter.storage.schema import transactions
from charter.storage.transactions import uuid7_parts, uuid7_text, uuid7_time
from charter.storage.txn_writes import metrics_json, utc_text
from tests.test_slot_helpers import PLAN, World, world

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NANOS = st.integers(min_value=0, max_value=4_102_444_800 * 10**9)  # to 2100


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock)


@given(ns=NANOS)
def test_a_time_in_nanoseconds_is_stored_as_its_datetime_would_be(ns: int) -> None:
    when = EPOCH + timedelta(microseconds=ns // 1000)
    assert utc_text(ns) == utc_text(when)
    assert datetime.fromisoformat(utc_text(ns) + "+00") == when


@given(ns=NANOS)
def test_moments_bucket_a_time_in_nanoseconds_as_its_datetime(ns: int) -> None:
    when = EPOCH + timedelta(microseconds=ns // 1000)
    metrics = {"q": 0.5}
    assert txn_moments.accumulate([("r", "baseline", ns, metrics)]) == txn_moments.accumulate(
        [("r", "baseline", when, metrics)]
    )


METRIC_NAMES = st.text(min_size=1, max_size=20)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


@given(metrics=st.dictionaries(METRIC_NAMES, FINITE, max_size=6))
def test_metrics_json_is_the_metrics_as_compact_json(metrics: dict[str, float]) -> None:
    text = metrics_json(metrics)
    assert json.loads(text) == metrics
    assert text == json.dumps(metrics, separators=(",", ":"))
    assert metrics_json(metrics) == text  # the cached template gives the same


def test_metric_names_with_percent_signs_and_quotes_are_kept_as_they_are() -> None:
    metrics = {"100%": 1.0, 'a"b': 2.5, "%r": -0.0, "é": 3e-9}
    assert json.loads(metrics_json(metrics)) == metrics


def test_an_id_from_its_parts_is_a_uuid7_of_its_millisecond() -> None:
    ms = int(datetime(2032, 1, 2, 3, 4, 5, 678000, tzinfo=UTC).timestamp() * 1000)
    ids = [uuid7_text(uuid7_parts(ms)) for _ in range(100)]
    assert ids == sorted(ids) and len(set(ids)) == 100
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == ids[0]
    assert uuid7_time(ids[0]) == datetime(2032, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def summary(found: dict[str, dict[str, dict[str, Moments]]]) -> dict[tuple[str, str, str], tuple[int, float]]:
    return {
        (arm, metric, day): (m.count, round(m.mean, 9))
        for arm, by_metric in found.items()
        for metric, by_day in by_metric.items()
        for day, m in by_day.items()
    }


def test_records_timed_by_the_wall_clock_are_stored_with_their_time_and_sums(w: World) -> None:
    recorder = w.sam.recorder
    recorder.wall_clock = True  # as in production: the system clock, times kept as nanoseconds
    recorder.flush_interval = 3600
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    txns = []
    for i in range(40):
        with w.sam.transaction("agent", key=f"k{i}") as txn:
            txn.record(quality=i / 40, cost=0.5)
            if i % 10 == 0:
                txn.record_shadow(quality=0.25)
        txns.append(txn)
    assert recorder.pending == 44
    first_id = txns[0].id
    assert txns[0].id is first_id and uuid.UUID(first_id).version == 7
    assert w.sam.flush().written == 44
    for txn in txns[:3]:
        stored = w.admin.trace(txn.id).transaction
        assert stored["time"] == txn.time.isoformat()
        assert stored["metrics"] == txn.metrics
    with w.admin.store.read() as tx:
        rows = tx.conn.exec_driver_sql(
            "SELECT parent_id, metrics FROM transactions WHERE arm = 'shadow' ORDER BY id"
        ).fetchall()
        assert [(r[0], json.loads(r[1])) for r in rows] == [
            (txns[i].id, {"quality": 0.25}) for i in (0, 10, 20, 30)
        ]
        rollout = tx.transactions.count()  # every record is in
        assert rollout == 44
        (rollout_id,) = tx.conn.exec_driver_sql("SELECT DISTINCT rollout_id FROM transactions").one()
        window = {
            "rollout_id": rollout_id,
            "arms": ["baseline", "candidate", "shadow"],
            "start": txns[0].time - timedelta(hours=1),
            "end": txns[-1].time + timedelta(hours=1),
            "metrics": ["quality", "cost"],
        }
        kept = tx.transactions.daily_moments(**window)
        scanned = tx.transactions.scan_daily_moments(**window)
    assert summary(kept) == summary(scanned)
    assert sum(v.count for by in kept["shadow"].values() for v in by.values()) == 4


def test_a_spooled_wall_clock_record_keeps_its_id_time_and_shadow_run(w: World) -> None:
    from charter.service.recorder import record_fields

    w.sam.recorder.wall_clock = True
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    w.sam.recorder.flush_interval = 3600
    with w.sam.transaction("agent", key="k") as txn:
        txn.record(quality=0.5)
        txn.record_shadow(quality=0.75)
    served, shadow = record_fields(txn)
    assert served["id"] == txn.id and served["time"] == txn.time.isoformat()
    assert shadow["parent_id"] == txn.id and shadow["arm"] == "shadow" and shadow["id"] != txn.id
    assert record_fields(txn)[1]["id"] == shadow["id"]  # made once
    w.sam.flush()


def one_by_one(records: list[tuple[str, str, datetime, dict[str, float]]]) -> txn_moments.Sums:
    """The sums, added record by record (what `accumulate` must equal)."""
    out: txn_moments.Sums = {}
    for rollout_id, arm, when, metrics in records:
        seconds = int(when.timestamp())
        for span in txn_moments.SPANS:
            for name, x in metrics.items():
                acc = out.setdefault((rollout_id, span, arm, name, seconds // span * span), [0, 0.0, 0.0])
                acc[0] += 1
                acc[1] += x
                acc[2] += x * x
    return out


RECORDS = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2"]),
        st.sampled_from(["baseline", "candidate"]),
        st.integers(min_value=0, max_value=3 * 3600).map(
            lambda s: datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=s)
        ),
        st.dictionaries(st.sampled_from(["q", "cost", "ok"]), st.floats(-1e6, 1e6), max_size=3),
    ),
    max_size=60,
)


@given(records=RECORDS)
def test_grouped_sums_equal_the_sums_added_record_by_record(
    records: list[tuple[str, str, datetime, dict[str, float]]],
) -> None:
    got, expected = txn_moments.accumulate(records), one_by_one(records)
    assert got.keys() == expected.keys()
    for key, (n, total, squares) in expected.items():
        assert got[key] == [n, pytest.approx(total, rel=1e-9, abs=1e-6), pytest.approx(squares, rel=1e-9)]


@pytest.mark.parametrize(
    "line",
    ['{"a": 1}\n', '  {"a": [1, 2.5, null]}  \n', '{"a": NaN}', '"text"', "3", '{"é": "ü"}\r\n'],
)
def test_the_line_parser_reads_what_json_loads_reads(line: str) -> None:
    from charter.service.ingest import _parse

    scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    got, expected = _parse(line, scan_once), json.loads(line)
    assert got == expected or (got != got and expected != expected)  # noqa: PLR0124  # NaN


@pytest.mark.parametrize("line", ['{"a": 1} x', '{"a": }', "{", "", '{"a": 1}{"b": 2}'])
def test_the_line_parser_refuses_what_json_loads_refuses(line: str) -> None:
    from charter.service.ingest import _parse

    scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    with pytest.raises(ValueError) as found:
        _parse(line, scan_once)
    with pytest.raises(ValueError) as expected:
        json.loads(line)
    assert str(found.value) == str(expected.value)


def test_text_with_tabs_newlines_and_backslashes_is_stored_as_it_was(w: World, tmp_path: Path) -> None:
    odd = 'tab\there, new\nline, cr\r, back\\slash, quote" and é'
    line = {
        "time": "2026-03-02T10:00:00Z",
        "release": w.production[:12],
        "key": odd[:200],
        "error": odd,
        "stage": "odd\tstage",
        "metrics": {"back\\slash": 1.5, "tab\tname": 2.0},
        "inputs": {"text": odd},
    }
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps(line) + "\n")
    w.sam.ingest("agent", path)  # ids are made here: PostgreSQL COPYs straight into the table
    line["id"] = str(uuid.UUID(int=7))
    path.write_text(json.dumps(line) + "\n")
    w.sam.ingest("agent", path)  # ids given: through the staging table
    with w.admin.store.read() as tx:
        ids = [r[0] for r in tx.conn.exec_driver_sql("SELECT id FROM transactions").fetchall()]
        assert len(ids) == 2
        for txn_id in ids:
            stored = tx.transactions.get(txn_id)
            assert stored is not None
            assert (stored.key, stored.error, stored.stage) == (odd, odd, "odd\tstage")
            assert stored.metrics == line["metrics"] and stored.inputs == line["inputs"]


def test_the_writer_stores_each_record_as_its_spool_line_describes_it(w: World) -> None:
    """The writer's grouped columns against the plain per-record description (`record_fields`, the
    spool's JSON): errors, sampled inputs, fallbacks (stale), shadow runs, several decisions."""
    from charter.service.recorder import record_fields

    w.admin.policies.apply({"drift": {"input_sample_rate": 1.0}})
    recorder = w.sam.recorder
    recorder.wall_clock = True
    recorder.flush_interval = 3600
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)  # shadow stage
    txns = []
    for i in range(60):
        try:
            with w.sam.transaction("agent", key=None if i % 7 == 0 else f"k\t{i}") as txn:
                txn.record(inputs={"n": i, "text": "a\nb"} if i % 3 == 0 else None, quality=i / 60)
                if i % 4 == 0:
                    txn.record_shadow(quality=0.5, cost=float(i))
                txn.fallback = i % 5 == 0
                if i % 6 == 0:
                    raise ValueError(f"boom\\{i}")
        except ValueError:
            pass
        txns.append(txn)
    assert w.sam.flush().written == 60 + 15
    expected = [fields for txn in txns for fields in record_fields(txn)]
    with w.admin.store.read() as tx:
        digests = dict(tx.conn.exec_driver_sql("SELECT id, digest FROM releases").fetchall())
        rows = tx.conn.execute(sa.select(transactions)).mappings().all()
    names = {"release_id": "release", "rollout_id": "rollout"}
    got = {}
    for r in rows:
        record = {names.get(k, k): v for k, v in r.items()}
        record.update(
            time=r["time"].isoformat(), slot="agent", release=digests[r["release_id"]],
            stale=bool(r["stale"]),
            metrics=json.loads(r["metrics"]), inputs=r["inputs"] and json.loads(r["inputs"]),
        )  # fmt: skip
        del record["slot_id"]
        got[r["id"]] = record
    assert len(got) == len(expected)
    for fields in expected:
        assert got[fields["id"]] == fields
    assert sum(1 for f in expected if f["stale"]) == 12 + 3 and sum(1 for f in expected if f["error"]) == 10


def test_an_ingested_file_is_stored_as_its_lines_say_with_the_sums_its_records_give(
    w: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Times kept as nanoseconds, ids made from them, duplicates skipped (in the file and stored
    already), and a bad line refusing its batch by number; the sums equal those recomputed from the
    stored records."""
    import charter.service.ingest as ingest_module
    from charter.errors import InvalidInput

    monkeypatch.setattr(ingest_module, "INGEST_BATCH", 4)
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    zones = ["Z", "+05:30", "", "-00:00", ".5Z", ".123456-07:00"]
    ids = {0: 1, 3: 2, 6: 1, 9: 3}  # line 7 repeats line 1's id; lines 13-24 (3 batches) have none
    lines = [
        {
            "time": f"2026-03-02T{9 + i % 3:02d}:{i:02d}:07{zones[i % len(zones)]}",
            "release": (w.candidate if i % 2 else w.production)[:12],
            "metrics": {"quality": i / 10, "format_ok": i % 2 == 0},
            **({"id": str(uuid.UUID(int=ids[i]))} if i in ids else {}),
        }
        for i in range(24)
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert w.sam.ingest("agent", path).inserted == 20 + 3
    assert w.sam.ingest("agent", path).inserted == 20  # the ids given are stored already
    first_time: dict[str, datetime] = {}
    for line in lines:
        if "id" in line:
            when = datetime.fromisoformat(line["time"])
            first_time.setdefault(line["id"], when if when.tzinfo else when.replace(tzinfo=UTC))
    with w.admin.store.read() as tx:
        stored = dict(tx.conn.execute(sa.select(transactions.c.id, transactions.c.time)).all())
        assert len(stored) == 43 and {i: stored[i] for i in first_time} == first_time
        query = "SELECT * FROM txn_moments ORDER BY rollout_id, span, arm, metric, bucket"
        kept = {tuple(r[:5]): r[5:] for r in tx.conn.exec_driver_sql(query)}
        txn_moments.rebuild(tx.conn)
        rebuilt = {tuple(r[:5]): r[5:] for r in tx.conn.exec_driver_sql(query)}
        tx.conn.rollback()
    assert kept.keys() == rebuilt.keys() and kept
    for key, (n, total, squares) in rebuilt.items():
        assert (
            kept[key][0] == n
            and kept[key][1] == pytest.approx(total)
            and kept[key][2] == pytest.approx(squares)
        )
    bad = [*lines[12:17], {**lines[17], "metrics": {"quality": "high"}}]
    path.write_text("".join(json.dumps(line) + "\n" for line in bad))
    with pytest.raises(InvalidInput, match="line 6: metric quality="):
        w.sam.ingest("agent", path)
    with w.admin.store.read() as tx:
        assert tx.transactions.count() == 43 + 4  # the first batch; not line 5, in the refused one


def plain_check(metrics: dict[str, object]) -> dict[str, float]:
    """The metrics rule written plainly: names of 1–200 characters; finite numbers, true/false as 1/0."""
    out = {}
    for name, value in metrics.items():
        if not 0 < len(name) <= 200:
            raise InvalidInput("name")
        if isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value)):
            out[name] = float(value)
        else:
            raise InvalidInput("value")
    return out


VALUES = st.one_of(
    st.floats(), st.integers(-(10**300), 10**300), st.booleans(), st.none(), st.text(max_size=3)
)


@settings(deadline=None)
@given(metrics=st.dictionaries(st.text(max_size=202), VALUES, max_size=4))
def test_checked_metrics_follow_the_plain_rule(metrics: dict[str, object]) -> None:
    try:
        expected: object = plain_check(metrics)
    except InvalidInput:
        expected = InvalidInput
    try:
        got: object = check_metrics(metrics)
        assert all(type(v) is float for v in got.values())  # type: ignore[attr-defined]
    except InvalidInput:
        got = InvalidInput
    assert got == expected


@settings(deadline=None)
@given(
    when=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    zone=st.sampled_from(["", "Z", "+00:00", "+05:30", "-07:00", "+14:00"]),
)
def test_a_time_text_is_read_as_iso_8601_with_no_zone_meaning_utc(when: datetime, zone: str) -> None:
    text = when.isoformat() + zone
    parsed = datetime.fromisoformat(text)
    expected = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    got = _time(text)
    assert got == expected and got.tzinfo is UTC

"""Transaction records: what `reg.transaction` records, the background writer and its flush policy,
the spool when the store is unreachable, and `txn ingest`."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from charter.clock import ManualClock
from charter.errors import InvalidInput, MissingRole
from charter.service.registry import Registry
from charter.storage.transactions import uuid7, uuid7_time
from tests.conftest import add_user
from tests.test_prompt_helpers import SQLITE_ONLY
from tests.test_router_sdk import POSTGRES_ONLY, postgres_down
from tests.test_slot_helpers import PLAN, World, world


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock)


def stored(reg: Registry, slot: str = "agent") -> int:
    with reg.store.read() as tx:
        found = tx.slots.slot(slot)
        assert found is not None
        return tx.transactions.count(slot_id=found.id)


def test_a_record_carries_the_decision_the_metrics_and_the_shadow_run(w: World) -> None:
    w.admin.policies.apply({"drift": {"input_sample_rate": 1.0}})
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    with w.sam.transaction("agent", key="alice") as txn:
        assert txn.shadow is not None and txn.release.digest == w.production
        txn.record(quality=0.9, format_ok=True, cost=0.011, inputs={"length": 42, "lang": "en"})
        txn.record_shadow(quality=0.7, format_ok=False, cost=0.02)
    w.sam.flush()
    trace = w.admin.trace(txn.id).as_dict()["transaction"]
    assert trace["arm"] == "baseline" and trace["stage"] == "shadow" and trace["key"] == "alice"
    assert trace["metrics"] == {"quality": 0.9, "format_ok": 1.0, "cost": 0.011}
    assert trace["inputs"] == {"length": 42, "lang": "en"} and trace["stale"] is False
    assert trace["table_version"] == 2 and trace["latency_ms"] >= 0 and trace["error"] is None
    with w.admin.store.read() as tx:
        rows = tx.conn.exec_driver_sql(
            "SELECT arm, parent_id, metrics FROM transactions WHERE arm = 'shadow'"
        ).fetchall()
    assert [(r[0], r[1], json.loads(r[2])["format_ok"]) for r in rows] == [("shadow", txn.id, 0.0)]
    assert w.admin.slots.inputs("agent") == [{"length": 42, "lang": "en"}]


@SQLITE_ONLY
def test_errors_are_recorded_and_raised_and_bad_metrics_are_refused(w: World) -> None:
    with pytest.raises(RuntimeError, match="model timed out"), w.sam.transaction("agent", key="k") as txn:
        txn.record(quality=0.1)
        raise RuntimeError("model timed out")
    w.sam.flush()
    assert w.admin.trace(txn.id).transaction["error"] == "RuntimeError: model timed out"
    with w.sam.transaction("agent", key="k") as other:
        with pytest.raises(InvalidInput, match="not a finite number"):
            other.record(quality=float("nan"))
        with pytest.raises(InvalidInput, match="no shadow release"):
            other.record_shadow(quality=1.0)
    w.admin.policies.apply({"drift": {"input_sample_rate": 0.0}})
    w.sam.router.invalidate()
    with w.sam.transaction("agent", key="k") as unsampled:
        unsampled.record(quality=1.0, inputs={"length": 1})
    assert unsampled.inputs is None  # not sampled at rate 0


def test_the_writer_thread_flushes_within_the_interval_and_close_flushes_the_rest(w: World) -> None:
    recorder = w.sam.recorder
    recorder.flush_interval = 0.05
    for i in range(50):
        with w.sam.transaction("agent", key=f"k{i}") as txn:
            txn.record(quality=1.0)
    deadline = time.monotonic() + 10
    while stored(w.admin) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stored(w.admin) == 50 and recorder.pending == 0
    recorder.flush_interval = 3600
    with w.sam.transaction("agent", key="last") as txn:
        txn.record(quality=1.0)
    w.sam.close()
    assert stored(w.admin) == 51


def test_ids_are_uuid7_in_time_order() -> None:
    clock = ManualClock(datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC))  # a millisecond no other test uses
    ids = [uuid7(clock.now()) for _ in range(5000)]
    assert ids[:4096] == sorted(ids[:4096]) and len(set(ids)) == 5000  # 4,096 per ms keep their order
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert uuid7_time(ids[0]) == clock.now()


@POSTGRES_ONLY
def test_records_made_during_an_outage_are_spooled_and_replayed_without_loss(w: World) -> None:
    w.sam.recorder.flush_interval = 3600
    w.sam.route("agent", "warm")  # the table is cached
    with postgres_down(w.sam):
        for i in range(30):
            with w.sam.transaction("agent", key=f"k{i}") as txn:
                txn.record(quality=0.5)
        assert txn.decision.stale
        report = w.sam.flush()
        assert (report.written, report.spooled) == (0, 30)
        spool = w.sam.recorder.spool
        assert sum(len(p.read_text().splitlines()) for p in spool.glob("txn-*.jsonl")) == 30
    with w.sam.transaction("agent", key="after") as txn:
        txn.record(quality=0.5)
    report = w.sam.flush()
    assert (report.written, report.replayed) == (1, 30)
    assert stored(w.admin) == 31 and not list(spool.glob("*.jsonl"))
    assert w.admin.trace(txn.id).transaction["stale"] is False
    stale = [r for r in spool.parent.glob("*")]  # nothing left behind
    assert all(p.is_dir() for p in stale)


def test_ingest_validates_every_line_and_skips_records_already_stored(w: World, tmp_path: Path) -> None:
    good = {"time": "2026-03-02T10:00:00Z", "release": w.production[:8], "metrics": {"quality": 1}}
    fixed = str(uuid7())
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({**good, "id": fixed, "arm": "baseline", "latency_ms": 12}) + "\n\n")
    assert w.sam.ingest("agent", path).inserted == 1
    again = w.sam.ingest("agent", path)
    assert (again.inserted, again.duplicates) == (0, 1)
    assert w.admin.trace(fixed).transaction["latency_ms"] == 12
    bad = [
        ({"release": w.production}, "`time`"),
        ({**good, "time": "yesterday"}, "not ISO 8601"),
        ({**good, "arm": "left"}, "arm 'left'"),
        ({**good, "colour": "red"}, "unknown field"),
        ({**good, "metrics": {"quality": "high"}}, "not a finite number"),
        ({**good, "metrics": [1, 2]}, "line 2: metrics must be an object"),
        ({**good, "metrics": {"q" * 201: 1}}, "line 2: metric name 'qqq"),
        ({**good, "id": "42"}, "not a UUID"),
        ({**good, "release": "0000000000"}, "line 2: release 0000000000 not found; list releases with"),
        ({**good, "release": "zz"}, "line 2: 'zz' is not a valid reference; expected a release digest"),
        ({**good, "latency_ms": 10**400}, "line 2: latency_ms 1000000000.* is not a valid float"),
    ]
    before = stored(w.admin)
    for record, message in bad:
        path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n")
        with pytest.raises(Exception, match=message):
            w.sam.ingest("agent", path)
    path.write_text("{not json\n")
    with pytest.raises(InvalidInput, match="line 1 is not JSON"):
        w.sam.ingest("agent", path)
    assert stored(w.admin) == before  # a bad batch loads nothing
    viewer = add_user(w.admin, "vic", "viewer")
    path.write_text(json.dumps(good) + "\n")
    with pytest.raises(MissingRole, match="service"):
        viewer.ingest("agent", path)


@SQLITE_ONLY
def test_ingested_records_join_the_rollout_that_was_running_at_their_time(w: World, tmp_path: Path) -> None:
    before = w.clock.now()
    w.clock.advance(timedelta(minutes=10))
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    rows = [
        {"time": before.isoformat(), "release": w.production, "metrics": {}},  # before the rollout
        {"time": w.clock.now().isoformat(), "release": w.production, "metrics": {}},
        {"time": w.clock.now().isoformat(), "release": w.candidate, "metrics": {}},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert w.sam.ingest("agent", path).by_arm == {"baseline": 2, "shadow": 1}
    with w.admin.store.read() as tx:
        found = tx.conn.exec_driver_sql(
            "SELECT rollout_id, stage, arm FROM transactions ORDER BY time, arm"
        ).fetchall()
    rollout = w.olga.rollouts.status("agent").rollout["id"]
    assert [tuple(r) for r in found] == [(None, None, "baseline"), (rollout, "shadow", "baseline"),
                                         (rollout, "shadow", "shadow")]  # fmt: skip


@SQLITE_ONLY
def test_a_spool_file_that_cannot_be_stored_is_set_aside_not_replayed_forever(w: World) -> None:
    spool = w.sam.recorder.spool
    spool.mkdir(parents=True, exist_ok=True)
    line = {"id": str(uuid7()), "time": "2026-03-02T10:00:00Z", "slot": "agent", "release": "ffffffffffff"}
    (spool / "txn-1-1.jsonl").write_text(json.dumps(line) + "\n")
    with w.sam.transaction("agent", key="k") as txn:
        txn.record(quality=1.0)
    report = w.sam.flush()
    assert (report.written, report.replayed) == (1, 0)
    assert [p.name.startswith("rejected-replaying-") for p in spool.iterdir()] == [True]
    assert w.sam.flush().replayed == 0


@SQLITE_ONLY
def test_drift_compares_training_data_with_the_inputs_a_slot_recorded(w: World, tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("length\n" + "".join(f"{i % 50}\n" for i in range(500)))
    w.admin.datasets.add("train", train, role="train")
    w.admin.policies.apply({"drift": {"input_sample_rate": 1.0}})
    w.sam.router.invalidate()
    for i in range(300):
        with w.sam.transaction("agent", key=f"d{i}") as txn:
            txn.record(quality=1.0, inputs={"length": 40 + i % 10})  # shifted towards long inputs
    w.sam.flush()
    report = w.admin.datasets.drift("train@1", "slot:agent").as_dict()
    assert report["against"] == "slot:agent" and report["verdict"] != "stable"
    since = w.clock.now() + timedelta(days=1)
    with pytest.raises(InvalidInput, match="no recorded inputs"):
        w.admin.datasets.drift("train@1", f"slot:agent@{since.isoformat()}")
    with pytest.raises(InvalidInput, match="no recorded inputs"):
        w.admin.datasets.drift("train@1", "slot:agent", since=since)
    with pytest.raises(InvalidInput, match="--since applies"):
        w.admin.datasets.drift("train@1", str(train), since=since)
    assert w.admin.datasets.drift("train@1", "slot:agent", since=w.clock.now() - timedelta(days=1)).verdict


def test_a_release_lookup_while_a_batch_streams_fails_and_spools_instead_of_hanging(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the batch's COPY holds the connection's lock: a statement on that connection
    while the chunks are made would wait forever. Every decision's ids are looked up before the
    COPY; if that ever regressed (simulated here by forgetting them as the first chunk is made), the
    flush must fail and keep the records in the spool, on both engines."""
    recorder = w.sam.recorder
    recorder.flush_interval = 3600
    for i in range(5):
        with w.sam.transaction("agent", key=f"k{i}") as txn:
            txn.record(quality=0.5)
    groups = type(recorder)._groups

    def forgetful(self: Any, conn: Any, txns: list[Any]) -> Any:
        self._ids.clear()
        self._served.clear()
        return groups(self, conn, txns)

    monkeypatch.setattr(type(recorder), "_groups", forgetful)
    with pytest.raises(RuntimeError, match="looked up while its batch was being streamed"):
        recorder.flush()
    monkeypatch.undo()
    assert stored(w.admin) == 0
    assert sum(len(p.read_text().splitlines()) for p in recorder.spool.glob("txn-*.jsonl")) == 5
    assert w.sam.flush().replayed == 5 and stored(w.admin) == 5

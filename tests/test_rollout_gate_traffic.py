"""The stage gate on simulated traffic that went through the real recorder or `txn ingest`: a
candidate 3 % worse is caught at the 2 % margin, an equal one passes, too few samples extends the
stage and fails it at the maximum duration. Aggregates come from SQL, never from loaded records."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from charter.clock import ManualClock
from charter.service.registry import Registry
from tests.test_slot_helpers import PLAN, World, normal_metrics, traffic, world


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock)


def into_canary(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 200)
    w.clock.advance(timedelta(hours=1))
    w.olga.rollouts.advance("agent")


def write_jsonl(
    path: Path, w: World, *, baseline: int, candidate: int, quality: float, seed: int = 11
) -> Path:
    """Records as an application would export them: time, release, metrics — no arm, no rollout."""
    rng = random.Random(seed)
    start = w.clock.now()
    lines = []
    for i in range(baseline + candidate):
        release = w.candidate if i < candidate else w.production
        mean = quality if release == w.candidate else 0.80
        record: dict[str, Any] = {
            "time": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "release": release[:10],
            "key": f"u{i}",
            "metrics": {"quality": rng.gauss(mean, 0.05), "format_ok": True, "cost": 0.01},
        }
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    return path


def quality(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["verdict"]["criteria"] if c["kind"] == "non_inferiority")


def test_a_candidate_3_percent_worse_is_caught_at_the_2_percent_margin(w: World) -> None:
    into_canary(w)
    # arms are bucketed with the rollout's random salt, so the split varies between runs: a tighter
    # spread keeps the verdict certain whatever the split
    traffic(w.sam, "agent", 6000, seed=5, candidate=normal_metrics(quality=0.80 * 0.97, quality_sd=0.02))
    w.clock.advance(timedelta(hours=2))
    status = w.olga.rollouts.status("agent").as_dict()
    criterion = quality(status)
    assert status["verdict"]["verdict"] == "fail" and criterion["verdict"] == "fail"
    evidence = criterion["evidence"]
    assert evidence["samples"]["candidate"] > 250 and evidence["samples"]["baseline"] > 5000
    assert evidence["estimates"]["ratio"] == pytest.approx(0.97, abs=0.01)
    assert evidence["confidence_bound"]["other_side"] < 0.98  # the upper bound is below 1 − margin
    assert evidence["window"]["from"] == status["rollout"]["stage_entered_at"]


def test_an_equal_candidate_passes_on_ingested_records(w: World, tmp_path: Path) -> None:
    into_canary(w)
    path = write_jsonl(tmp_path / "records.jsonl", w, baseline=3000, candidate=400, quality=0.80)
    report = w.sam.ingest("agent", path)
    assert (report.lines, report.inserted, report.duplicates) == (3400, 3400, 0)
    assert report.by_arm == {"candidate": 400, "baseline": 3000}  # arms inferred from the release
    w.clock.advance(timedelta(hours=2))
    status = w.olga.rollouts.status("agent").as_dict()
    criterion = quality(status)
    assert criterion["verdict"] == "pass", criterion["reason"]
    assert criterion["evidence"]["samples"] == {"baseline": 3000, "candidate": 400}
    assert criterion["evidence"]["confidence_bound"]["ratio"] > 0.98
    again = w.sam.ingest("agent", path)  # the same file again: ids are new, so records are too
    assert again.inserted == 3400


def test_too_few_samples_is_inconclusive_extends_the_stage_then_fails_it(w: World, tmp_path: Path) -> None:
    into_canary(w)
    w.sam.ingest("agent", write_jsonl(tmp_path / "few.jsonl", w, baseline=500, candidate=20, quality=0.80))
    w.clock.advance(timedelta(hours=3))
    status = w.olga.rollouts.status("agent").as_dict()
    assert status["verdict"]["verdict"] == "inconclusive"
    assert "too few samples (baseline 500, candidate 20)" in quality(status)["reason"]
    assert "extending the stage (up to 1d)" in status["verdict"]["reason"]
    assert w.olga.rollouts.tick().items[0].action is None
    w.clock.advance(timedelta(hours=21))
    [item] = w.olga.rollouts.tick().items
    assert item.action == "expire" and "still inconclusive at the maximum duration" in item.reason


def test_shadow_records_are_the_candidates_evidence_in_shadow(w: World, tmp_path: Path) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    path = tmp_path / "shadow.jsonl"
    now = w.clock.now().isoformat()
    rows = [
        {"time": now, "release": w.candidate, "metrics": {"format_ok": 1, "quality": 0.8, "cost": 0.01}}
    ] * 60
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert w.sam.ingest("agent", path).by_arm == {"shadow": 60}
    w.clock.advance(timedelta(hours=1))
    verdict = w.olga.rollouts.status("agent").verdict
    assert verdict is not None and verdict["verdict"] == "pass"
    assert verdict["criteria"][0]["evidence"]["samples"] == {"candidate": 60}

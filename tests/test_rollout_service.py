"""Rollouts through the service: every stage, the gate on recorded traffic, approvals, the checklist,
pause/resume/abort, overrides, the automatic rules, incidents, production and slot rollback."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from charter.clock import ManualClock
from charter.errors import (
    AdvanceRefused,
    ApprovalRequired,
    GateRefused,
    InvalidInput,
    MissingRole,
    NotFound,
    Refused,
    RollbackWindowClosed,
    RolloutActive,
    SeparationOfDuties,
    UnknownChecklistItem,
)
from charter.service.registry import Registry
from tests.test_prompt_helpers import SQLITE_ONLY
from tests.test_slot_helpers import MODEL_SPEC, PLAN, World, normal_metrics, to_production, traffic, world


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock)


def head(reg: Registry) -> int:
    return reg.audit.log(newest_first=True, limit=1)[0].sequence


def test_a_healthy_candidate_goes_all_the_way_to_production(w: World) -> None:
    step = to_production(w)
    assert step.transition["action"] == "complete" and step.rollout["phase"] == "production"
    assert set(step.moved) == {"model:m@1.1.0", "prompt:greet-v2"}
    slot = w.admin.slots.show("agent")
    assert slot.production == w.candidate and slot.rollout is None
    # the registries' own production pointers moved, with their own audit events
    assert w.admin.models.get("m@production").ref == "m@1.1.0"
    assert w.admin.prompts.get("greet@production").ref == "greet-v2"
    moves = w.admin.models.history("m")
    assert [(m.kind, m.to_version) for m in moves] == [("promote", "1.1.0")]
    assert w.admin.audit.log(subject="model:m@1.1.0")[-1].action == "model.promoted"
    # the gate report evaluated before real traffic is the model's promotion record
    details = w.admin.models.describe("m@1.1.0").as_dict()
    assert details["promotions"][0]["rollback_plan"] == PLAN
    # the metrics observed during the rollout are stored on the model and prompt versions
    observed = w.admin.prompts.diff("greet-v1", "greet-v2").as_dict()["production_metrics"]
    assert observed["a"] is None
    candidate = observed["b"]["latest"]["metrics"]["candidate"]["quality"]
    assert candidate["count"] > 300 and candidate["mean"] == pytest.approx(0.80, abs=0.01)
    # every routed request now goes to the new production release
    assert {w.sam.route("agent", f"k{i}").release.digest for i in range(50)} == {w.candidate}
    periods = w.admin.provenance.production_periods("m")
    assert [(p["version"], p["kind"], p["to"] is None) for p in periods] == [
        ("1.0.0", "bootstrap", False),
        ("1.1.0", "rollout", True),
    ]
    assert w.admin.audit.verify().ok


def test_the_traffic_split_follows_the_stage_and_keys_stay_in_the_candidate(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    decision = w.sam.route("agent", "alice")
    assert decision.release.digest == w.production and decision.shadow is not None
    assert decision.shadow.digest == w.candidate and decision.stage == "shadow"
    traffic(w.sam, "agent", 200)
    w.clock.advance(timedelta(hours=1))
    w.olga.rollouts.advance("agent")
    keys = [f"user-{i}" for i in range(4000)]
    w.sam.router.refresh_interval = 3600  # read the table once per stage (the next line re-reads it)
    at5 = {k for k in keys if w.sam.route("agent", k).arm.value == "candidate"}
    assert 150 < len(at5) < 250
    assert all(w.sam.route("agent", k).shadow is None for k in keys[:100])
    w.admin.rollouts.advance("agent", override=True, reason="testing the split")
    w.sam.router.invalidate()
    at50 = {k for k in keys if w.sam.route("agent", k).arm.value == "candidate"}
    assert at5 <= at50 and 1800 < len(at50) < 2200


def test_advancing_too_early_is_refused_with_the_evidence_and_writes_nothing(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    before = head(w.admin)
    with pytest.raises(AdvanceRefused) as refused:
        w.olga.rollouts.advance("agent")
    report = refused.value.report
    assert report["verdict"] == "inconclusive" and "minimum duration 1h has not passed" in report["reason"]
    assert report["criteria"][0]["evidence"]["samples"] == {"candidate": 0}
    assert head(w.admin) == before
    traffic(w.sam, "agent", 20)
    w.clock.advance(timedelta(hours=1))
    with pytest.raises(AdvanceRefused, match="too few samples"):
        w.olga.rollouts.advance("agent")
    assert w.olga.rollouts.status("agent").rollout["status"] == "shadow"


@SQLITE_ONLY
def test_an_override_needs_an_admin_and_a_reason_and_is_audited(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    with pytest.raises(MissingRole, match="admin"):
        w.olga.rollouts.advance("agent", override=True, reason="in a hurry")
    with pytest.raises(InvalidInput, match="needs a reason"):
        w.admin.rollouts.advance("agent", override=True, reason=" ")
    with pytest.raises(InvalidInput, match="goes with --override"):
        w.olga.rollouts.advance("agent", reason="why not")
    step = w.admin.rollouts.advance("agent", override=True, reason="shadow infra is down; owner accepts")
    assert step.transition["override"] == {"by": "admin", "reason": "shadow infra is down; owner accepts"}
    event = w.admin.audit.log(subject="slot:agent")[-1]
    assert event.action == "rollout.advance" and event.payload["override"]["by"] == "admin"
    assert event.evidence["verdict"]["verdict"] == "inconclusive"
    history = w.olga.rollouts.status("agent").transitions
    assert history[-1]["override"]["reason"].startswith("shadow infra")


@SQLITE_ONLY
def test_a_major_model_change_needs_a_reviewer_who_neither_started_it_nor_authored_the_model(
    w: World,
) -> None:
    reg = w.admin
    reg.models.register("n", {**MODEL_SPEC, "family": "gpt-4o", "provider": "openai",
                              "provider_model": "gpt-4o-2024-08-06"})  # fmt: skip
    reg.models.eval("n@1.0.0", dataset="golden@1", metrics={"accuracy": 0.95})
    w.rita.models.signoff("n@1.0.0")
    major = reg.releases.create("agent", model="n@1.0.0", prompts=["greet-v2"])
    start = w.olga.rollouts.start("agent", release=major.digest, rollback_plan=PLAN)
    assert start.rollout["approval_required"] and start.rollout["phase"] == "running"  # shadow needs none
    traffic(w.sam, "agent", 200)
    w.clock.advance(timedelta(hours=1))
    with pytest.raises(ApprovalRequired, match="charter rollout approve agent"):
        w.olga.rollouts.advance("agent")
    both = reg.as_user("olga")
    reg.users.change_roles("olga", add=["reviewer"])
    with pytest.raises(SeparationOfDuties, match="nobody approves a rollout they started"):
        both.rollouts.approve("agent")
    with pytest.raises(SeparationOfDuties, match="authored"):
        reg.rollouts.approve("agent")  # admin registered n@1.0.0
    with pytest.raises(MissingRole, match="reviewer"):
        w.sam.rollouts.approve("agent")
    approved = w.rita.rollouts.approve("agent")
    assert approved.rollout["approved_by"] == "rita"
    assert w.olga.rollouts.advance("agent").rollout["stage"] == "canary"


def test_real_traffic_needs_the_promotion_gate_and_validated_prompts_shadow_needs_neither(
    w: World, tmp_path: Path
) -> None:
    from tests.test_prompt_helpers import write
    from tests.test_slot_helpers import prompt_file

    reg = w.admin
    reg.models.register("m", {**MODEL_SPEC, "provider_model": "claude-sonnet-4-5-20251101"})  # unsigned
    write(tmp_path / "prompts", "greet.prompt.yaml", prompt_file(3))
    reg.prompts.sync(tmp_path / "prompts")  # greet-v3: never validated, never in staging
    raw = reg.releases.create("agent", model="m@1.2.0", prompts=["greet-v3"])
    w.olga.rollouts.start("agent", release=raw.digest, rollback_plan=PLAN)
    traffic(w.sam, "agent", 200)
    w.clock.advance(timedelta(hours=1))
    before = head(reg)
    with pytest.raises(GateRefused) as refused:
        w.olga.rollouts.advance("agent")
    report = refused.value.report
    failed = [c["name"] for c in report["model"]["checks"] if not c["passed"]]
    assert failed == ["held_out_evaluation", "champion_comparison", "sign_off"]
    assert not report["prompts"][0]["passed"]
    assert "no staging validation" in report["prompts"][0]["detail"]
    assert "never held staging" in report["prompts"][0]["detail"]
    assert head(reg) == before and w.olga.rollouts.status("agent").rollout["stage"] == "shadow"


def test_pause_holds_the_split_and_stops_the_clock_abort_sends_everyone_back(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 200)
    w.clock.advance(timedelta(minutes=30))
    paused = w.olga.rollouts.pause("agent", reason="investigating latency")
    assert paused.rollout["status"] == "paused in shadow"
    assert w.sam.route("agent", "alice").shadow is not None  # the split holds
    w.clock.advance(timedelta(hours=5))
    w.olga.rollouts.resume("agent")
    with pytest.raises(AdvanceRefused, match="30m to go"):
        w.olga.rollouts.advance("agent")
    with pytest.raises(InvalidInput, match="needs a reason"):
        w.olga.rollouts.abort("agent", reason="")
    aborted = w.olga.rollouts.abort("agent", reason="wrong release")
    assert aborted.rollout["phase"] == "aborted"
    decision = w.sam.route("agent", "alice")
    assert decision.release.digest == w.production and decision.shadow is None
    with pytest.raises(NotFound, match="is aborted"):
        w.olga.rollouts.pause("agent")


@SQLITE_ONLY
def test_one_active_rollout_per_slot_and_the_checklist_belongs_to_the_policy(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    other = w.admin.releases.create("agent", model="m@1.1.0", prompts=["greet-v1"])
    with pytest.raises(RolloutActive, match="at most one"):
        w.olga.rollouts.start("agent", release=other.digest, rollback_plan=PLAN)
    with pytest.raises(UnknownChecklistItem, match="rollback-tested, oncall-briefed"):
        w.olga.rollouts.check("agent", item="smoke")
    w.olga.rollouts.check("agent", item="rollback-tested")
    with pytest.raises(Refused, match="already checked"):
        w.olga.rollouts.check("agent", item="rollback-tested")
    w.olga.rollouts.abort("agent", reason="start over")
    with pytest.raises(Refused, match="already the production release"):
        w.olga.rollouts.start("agent", release=w.production, rollback_plan=PLAN)
    with pytest.raises(InvalidInput, match="rollback plan"):
        w.olga.rollouts.start("agent", release=other.digest, rollback_plan=" ")


def test_tick_rolls_back_a_safety_breach_at_once(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 100, candidate=normal_metrics(format_ok=0.5))  # format compliance far below 0.9
    report = w.olga.rollouts.tick()  # before the minimum duration: a breach does not wait
    [item] = report.items
    assert item.action == "rollback" and item.verdict == "fail"
    assert "safety breach" in item.step.transition["reason"]
    assert item.step.transition["automatic"] is True
    event = w.admin.audit.log(subject="slot:agent")[-1]
    assert event.actor == "charter" and event.payload["triggered_by"] == "olga"
    assert w.sam.route("agent", "alice").shadow is None
    assert w.olga.rollouts.tick().items == ()


def test_tick_rolls_back_a_failed_stage_and_expires_an_inconclusive_one(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 200)
    w.clock.advance(timedelta(hours=1))
    w.olga.rollouts.advance("agent")
    # arms are bucketed with the rollout's random salt, so the split varies between runs: a tighter
    # spread keeps the verdict certain whatever the split
    traffic(
        w.sam, "agent", 6000, seed=5, candidate=normal_metrics(quality=0.80 * 0.97, quality_sd=0.02)
    )  # 3 % worse
    w.clock.advance(timedelta(minutes=30))
    assert w.olga.rollouts.tick().items[0].action is None  # quality is judged after the minimum duration
    w.clock.advance(timedelta(hours=2))
    [item] = w.olga.rollouts.tick().items
    assert item.action == "rollback" and "stage canary failed" in item.step.transition["reason"]
    quality = item.step.transition["verdict"]["criteria"][0]
    assert quality["verdict"] == "fail" and quality["evidence"]["confidence_bound"]["other_side"] < 0.98
    # a second candidate that never gets enough traffic expires at the maximum duration
    again = w.admin.releases.create("agent", model="m@1.1.0", prompts=["greet-v2"], app_version="v2")
    w.olga.rollouts.start("agent", release=again.digest, rollback_plan=PLAN)
    w.clock.advance(timedelta(hours=23))
    assert w.olga.rollouts.tick().items[0].action is None
    w.clock.advance(timedelta(hours=1))
    [expired] = w.olga.rollouts.tick().items
    assert expired.action == "expire" and expired.step.rollout["phase"] == "rolled_back"


def test_a_p0_incident_rolls_the_candidate_back_immediately(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 200)
    w.clock.advance(timedelta(hours=1))
    w.olga.rollouts.advance("agent")
    minor = w.olga.rollouts.incident("agent", severity="p2", release=w.candidate[:8], summary="typo")
    assert minor.rollback is None and minor.incident["severity"] == "P2"
    on_baseline = w.olga.rollouts.incident("agent", severity="P0", release=w.production, summary="old bug")
    assert on_baseline.rollback is None
    result = w.olga.rollouts.incident("agent", severity="P0", release=w.candidate, summary="leaks PII")
    assert result.rollback is not None
    assert result.rollback.rollout["phase"] == "rolled_back"
    assert "1 P0 incident reported against the candidate" in result.rollback.transition["reason"]
    assert all(w.sam.route("agent", f"k{i}").arm.value == "baseline" for i in range(100))
    assert [i["severity"] for i in w.olga.rollouts.incidents("agent")] == ["P2", "P0", "P0"]
    with pytest.raises(InvalidInput, match="P0, P1, P2, P3"):
        w.olga.rollouts.incident("agent", severity="P9", release=w.candidate, summary="x")


def test_slot_rollback_restores_the_previous_release_within_its_window_only(w: World) -> None:
    to_production(w)
    before = head(w.admin)
    w.olga.rollouts.start("agent", release=w.production, rollback_plan=PLAN)
    with pytest.raises(RolloutActive):
        w.olga.slots.rollback("agent", reason="bad")
    w.olga.rollouts.abort("agent", reason="use slot rollback instead")
    w.clock.advance(timedelta(days=2))
    result = w.olga.slots.rollback("agent", reason="quality complaints")
    assert (result.before, result.after) == (w.candidate, w.production)
    assert set(result.moved) == {"model:m@1.0.0", "prompt:greet-v1"}
    assert w.admin.models.get("m@production").ref == "m@1.0.0"
    assert w.admin.prompts.get("greet@production").ref == "greet-v1"
    assert w.sam.route("agent", "alice").release.digest == w.production
    assert head(w.admin) > before
    # back again: the release the rollout brought is within its window too
    w.olga.slots.rollback("agent", to=w.candidate[:8])
    w.clock.advance(timedelta(days=31))
    before = head(w.admin)
    with pytest.raises(RollbackWindowClosed, match="start a new rollout"):
        w.olga.slots.rollback("agent")
    assert head(w.admin) == before


def test_starting_needs_a_production_release(registry: Registry) -> None:
    registry.slots.create("fresh")
    with pytest.raises(NotFound):
        registry.rollouts.status("fresh")
    with pytest.raises(NotFound, match="active rollout"):
        registry.rollouts.advance("fresh")

"""The rollout state machine: its table, its rules, and a hypothesis state machine over many slots."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from charter.domain import rollout as ro
from charter.domain.canonical import canonical_json
from charter.domain.gate import Observations, StageVerdict, Verdict, Window
from charter.domain.rollback_window import check_rollback_window
from charter.domain.rollout import (
    ACTIVE_PHASES,
    IN_STAGE_PHASES,
    TRANSITIONS,
    Action,
    Override,
    Phase,
    Rollout,
    Transition,
)
from charter.domain.routing import Arm, route
from charter.domain.tracks import TrackPolicy, default_track_policy, parse_track_policy
from charter.errors import (
    AdvanceRefused,
    ApprovalRequired,
    InvalidInput,
    InvalidTransition,
    RollbackWindowClosed,
    RolloutActive,
    RolloutRefused,
    SeparationOfDuties,
    UnknownChecklistItem,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DEFAULT = default_track_policy()
NO_SHADOW = parse_track_policy(
    {
        "name": "no-shadow",
        "metrics": {"quality": "higher"},
        "stages": [
            {
                "name": "canary",
                "traffic": 10,
                "min_duration": "1d",
                "max_duration": "2d",
                "criteria": [{"kind": "checklist", "items": ["smoke-tested"]}],
            },
            {"name": "half", "traffic": 50, "min_duration": "1d", "max_duration": "2d"},
            {"name": "production", "traffic": 100, "rollback_window": "7d"},
        ],
    }
)


def verdict_for(rollout: Rollout, kind: str = "pass", *, elapsed: timedelta | None = None) -> StageVerdict:
    """A stage verdict as the gate would hand it over (the gate itself is tested elsewhere)."""
    stage = rollout.stage
    v = {"pass": Verdict.PASS, "inconclusive": Verdict.INCONCLUSIVE}.get(kind, Verdict.FAIL)
    return StageVerdict(
        stage=stage.name,
        verdict=v,
        reason=f"simulated {kind}",
        results=(),
        window=Window(rollout.stage_entered_at, rollout.stage_entered_at + (elapsed or stage.min_duration)),
        elapsed=elapsed or stage.min_duration,
        min_duration=stage.min_duration,
        max_duration=stage.max_duration,
        breach="simulated P0" if kind == "breach" else None,
        expired=kind == "expired",
    )


def started(policy: TrackPolicy = DEFAULT, *, approval: bool = False, slot: str = "agent") -> Rollout:
    return ro.start(
        rollout_id="r1",
        slot=slot,
        baseline="rel-a",
        candidate="rel-b",
        policy=policy,
        salt="r1",
        actor="olga",
        now=T0,
        approval_required=approval,
        active=None,
    ).after


# --- the table ----------------------------------------------------------------------------------------


def test_terminal_phases_accept_nothing_and_active_ones_can_always_be_stopped() -> None:
    for phase in Phase:
        actions = {a for (p, a) in TRANSITIONS if p is phase}
        if phase in ACTIVE_PHASES:
            assert {Action.ABORT, Action.ROLLBACK} <= actions
        else:
            assert not actions


def test_an_invalid_transition_names_the_accepted_actions() -> None:
    paused = ro.pause(started(), actor="olga", now=T0).after
    with pytest.raises(
        InvalidTransition,
        match="cannot advance a rollout that is paused in shadow; "
        "actions accepted now: approve, check, resume, abort, rollback",
    ):
        ro.advance(paused, verdict_for(paused), actor="olga", now=T0)
    ended = ro.abort(started(), actor="olga", now=T0, reason="wrong release").after
    with pytest.raises(InvalidTransition, match="none \\(the rollout has ended\\)"):
        ro.resume(ended, actor="olga", now=T0)


# --- the rules ----------------------------------------------------------------------------------------


def test_a_rollout_walks_the_default_track_to_production() -> None:
    r = started(approval=True)
    assert r.phase is Phase.RUNNING and r.status == "shadow"  # shadow needs no approval
    assert ro.split(r).as_dict() == {"candidate": 0, "baseline": 100, "shadow_sample": 1.0}
    with pytest.raises(ApprovalRequired, match="charter rollout approve agent"):
        ro.advance(r, verdict_for(r), actor="olga", now=T0 + timedelta(days=3))
    with pytest.raises(SeparationOfDuties):
        ro.approve(r, actor="olga", now=T0)
    r = ro.approve(r, actor="rita", now=T0 + timedelta(days=1)).after
    now = T0
    seen = []
    while r.phase is Phase.RUNNING:
        now += r.stage.min_duration
        if r.stage.name == "canary-half":
            for item in ("rollback-tested", "oncall-briefed"):
                r = ro.check(r, item, actor="olga", now=now).after
        step = ro.advance(r, verdict_for(r), actor="olga", now=now)
        seen.append((step.action, step.after.status))
        canonical_json(step.as_dict())  # the audit payload is plain, hashable JSON
        r = step.after
    assert seen == [
        (Action.ADVANCE, "canary-micro"),
        (Action.ADVANCE, "canary-small"),
        (Action.ADVANCE, "canary-half"),
        (Action.COMPLETE, "production"),
    ]
    assert r.phase is Phase.PRODUCTION and not r.active and ro.split(r).candidate == 100
    assert r.end_reason == "reached production"


def test_approval_is_awaited_at_start_when_the_first_stage_has_real_traffic() -> None:
    r = started(NO_SHADOW, approval=True)
    assert r.phase is Phase.AWAITING_APPROVAL and ro.split(r).candidate == 0
    assert ro.routing_table("agent", 2, "rel-a", r).candidate is None
    approved = ro.approve(r, actor="rita", now=T0 + timedelta(hours=5))
    assert approved.after.phase is Phase.RUNNING and approved.after.stage_entered_at == T0 + timedelta(
        hours=5
    )
    with pytest.raises(RolloutRefused, match="already approved by rita"):
        ro.approve(approved.after, actor="sam", now=T0)
    with pytest.raises(RolloutRefused, match="needs no approval"):
        ro.approve(started(NO_SHADOW, approval=False), actor="rita", now=T0)


def test_no_advance_without_pass_unless_an_admin_overrides_with_a_reason() -> None:
    r = started()
    for kind in ("inconclusive", "fail", "expired"):
        with pytest.raises(AdvanceRefused, match="--override --reason") as refused:
            ro.advance(r, verdict_for(r, kind), actor="olga", now=T0)
        assert refused.value.report["stage"] == "shadow"
    with pytest.raises(InvalidInput, match="needs a reason"):
        Override("  ")
    step = ro.advance(
        r, verdict_for(r, "inconclusive"), actor="ada", now=T0, override=Override("vendor outage")
    )
    assert step.overridden and step.evidence["override"] == {"by": "ada", "reason": "vendor outage"}
    assert step.as_dict()["override"]["reason"] == "vendor outage"
    assert not ro.advance(r, verdict_for(r), actor="ada", now=T0, override=Override("not needed")).overridden


def test_a_safety_breach_cannot_be_overridden() -> None:
    r = started()
    with pytest.raises(AdvanceRefused, match="cannot be overridden"):
        ro.advance(r, verdict_for(r, "breach"), actor="ada", now=T0, override=Override("ship it"))


def test_complete_only_from_the_last_stage_before_production() -> None:
    r = started()
    with pytest.raises(InvalidTransition, match="cannot complete"):
        ro.complete(r, verdict_for(r), actor="olga", now=T0)


def test_one_active_rollout_per_slot() -> None:
    first = started()
    with pytest.raises(RolloutActive, match="already has an active rollout \\(r1, shadow\\)"):
        ro.start(
            rollout_id="r2",
            slot="agent",
            baseline="rel-a",
            candidate="rel-c",
            policy=DEFAULT,
            salt="r2",
            actor="olga",
            now=T0,
            approval_required=False,
            active=first,
        )
    ended = ro.rollback(first, actor="olga", now=T0, reason="bad outputs").after
    again = ro.start(
        rollout_id="r2",
        slot="agent",
        baseline="rel-a",
        candidate="rel-c",
        policy=DEFAULT,
        salt="r2",
        actor="olga",
        now=T0,
        approval_required=False,
        active=ended,
    )
    assert again.after.active
    with pytest.raises(RolloutRefused, match="already the production release"):
        ro.start(
            rollout_id="r3",
            slot="agent",
            baseline="rel-a",
            candidate="rel-a",
            policy=DEFAULT,
            salt="r3",
            actor="olga",
            now=T0,
            approval_required=False,
            active=None,
        )


def test_pausing_holds_the_traffic_and_stops_the_stage_clock() -> None:
    r = ro.advance(started(), verdict_for(started()), actor="olga", now=T0).after  # canary-micro from T0
    paused = ro.pause(r, actor="olga", now=T0 + timedelta(days=1), reason="investigating").after
    assert ro.split(paused).candidate == 5
    assert paused.elapsed(T0 + timedelta(days=10)) == timedelta(days=1)
    resumed = ro.resume(paused, actor="olga", now=T0 + timedelta(days=4)).after
    assert resumed.elapsed(T0 + timedelta(days=5)) == timedelta(days=2)


def test_tick_rolls_back_on_a_breach_even_when_paused_and_expires_a_stage_at_its_maximum() -> None:
    r = started()
    assert ro.tick(r, verdict_for(r, "inconclusive"), now=T0) is None
    assert ro.tick(r, verdict_for(r, "pass"), now=T0) is None  # advancing stays a person's decision
    breach = ro.tick(ro.pause(r, actor="olga", now=T0).after, verdict_for(r, "breach"), now=T0)
    assert breach is not None and breach.action is Action.ROLLBACK and breach.after.phase is Phase.ROLLED_BACK
    assert breach.evidence["automatic"] and breach.actor == ro.SYSTEM_ACTOR
    assert "safety breach" in (breach.after.end_reason or "")
    expired = ro.tick(r, verdict_for(r, "expired"), now=T0 + timedelta(days=7))
    assert (
        expired is not None and expired.action is Action.EXPIRE and expired.after.phase is Phase.ROLLED_BACK
    )
    failed = ro.tick(r, verdict_for(r, "fail"), now=T0 + timedelta(days=3))
    assert (
        failed is not None
        and failed.action is Action.ROLLBACK
        and "failed" in (failed.after.end_reason or "")
    )
    with pytest.raises(RolloutRefused, match="has not expired"):
        ro.expire(r, verdict_for(r, "fail"), now=T0)


def test_a_p0_report_rolls_back_through_the_real_gate() -> None:
    r = ro.advance(started(), verdict_for(started()), actor="olga", now=T0).after
    obs = Observations(Window(T0, T0 + timedelta(hours=1)), incidents={"P0": 1})
    verdict = ro.evaluate(r, obs, now=T0 + timedelta(hours=1))
    step = ro.tick(r, verdict, now=T0 + timedelta(hours=1))
    assert step is not None and step.after.phase is Phase.ROLLED_BACK
    assert step.evidence["verdict"]["breach"] == "1 P0 incident reported against the candidate"


def test_checklist_items_must_belong_to_the_policy() -> None:
    r = started()
    with pytest.raises(UnknownChecklistItem, match="accepted: rollback-tested, oncall-briefed"):
        ro.check(r, "vibes-checked", actor="olga", now=T0)
    r = ro.check(r, "rollback-tested", actor="olga", now=T0).after
    with pytest.raises(RolloutRefused, match="already checked"):
        ro.check(r, "rollback-tested", actor="olga", now=T0)


def test_abort_and_rollback_need_reasons() -> None:
    with pytest.raises(InvalidInput, match="reason"):
        ro.abort(started(), actor="olga", now=T0, reason="")
    with pytest.raises(InvalidInput, match="reason"):
        ro.rollback(started(), actor="olga", now=T0, reason=" ")


def test_the_routing_table_follows_the_stage_with_the_rollouts_salt() -> None:
    r = ro.advance(started(), verdict_for(started()), actor="olga", now=T0).after
    table = ro.routing_table("agent", 8, "rel-a", r)
    assert (table.traffic, table.shadow_sample, table.salt, table.stage, table.version) == (
        5,
        0.0,
        "r1",
        "canary-micro",
        8,
    )
    shadow_table = ro.routing_table("agent", 7, "rel-a", started())
    assert (
        route(shadow_table, "user-1").shadow == "rel-b" and route(shadow_table, "user-1").arm is Arm.BASELINE
    )
    with pytest.raises(ValueError):
        ro.routing_table("agent", 9, "rel-z", r)


def test_slot_rollback_is_refused_outside_the_window() -> None:
    check_rollback_window(
        slot="agent", release="rel-a", promoted_at=T0, policy=DEFAULT, now=T0 + timedelta(days=30)
    )
    with pytest.raises(RollbackWindowClosed, match="closed at 2026-03-31"):
        check_rollback_window(
            slot="agent",
            release="rel-a",
            promoted_at=T0,
            policy=DEFAULT,
            now=T0 + timedelta(days=30, seconds=1),
        )


def test_a_rollout_survives_a_round_trip_through_storage() -> None:
    r = ro.approve(started(approval=True), actor="rita", now=T0).after
    r = ro.check(r, "oncall-briefed", actor="olga", now=T0).after
    r = ro.pause(r, actor="olga", now=T0 + timedelta(hours=3)).after
    assert Rollout.from_dict(r.as_dict(), DEFAULT) == r
    with pytest.raises(ValueError, match="another version of policy"):
        Rollout.from_dict(r.as_dict(), NO_SHADOW)


# --- the state machine --------------------------------------------------------------------------------

SLOTS = ("agent", "search", "billing")
VERDICTS = ("pass", "inconclusive", "fail", "expired", "breach")
# weighted towards what lets rollouts go deep: most verdicts pass, few ticks end a rollout
LIKELY_VERDICTS = st.sampled_from(("pass",) * 6 + VERDICTS)
QUIET_TICKS = st.sampled_from(("pass", "inconclusive") * 6 + VERDICTS)
OPERATIONS = st.sampled_from(("pause", "resume") * 3 + ("abort", "rollback"))


class RolloutMachine(RuleBasedStateMachine):
    """Many slots, many rollouts, every action in any order: the invariants always hold."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.serial = 0
        self.production = {slot: f"{slot}-rel-0" for slot in SLOTS}
        self.history: dict[str, list[Rollout]] = {slot: [] for slot in SLOTS}
        self.transitions: list[Transition] = []

    def current(self, slot: str) -> Rollout | None:
        return self.history[slot][-1] if self.history[slot] else None

    def record(self, step: Transition) -> None:
        before, after = step.before, step.after
        assert before is not None and before.id == after.id
        if before.phase in IN_STAGE_PHASES and after.phase in IN_STAGE_PHASES:
            assert ro.split(after).candidate >= ro.split(before).candidate  # traffic never shrinks
        if after.phase is Phase.PRODUCTION:
            self.production[after.slot] = after.candidate
        self.history[after.slot][-1] = after
        self.transitions.append(step)

    @rule(slot=st.sampled_from(SLOTS), policy=st.sampled_from((DEFAULT, NO_SHADOW)), approval=st.booleans())
    def start(self, slot: str, policy: TrackPolicy, approval: bool) -> None:
        self.serial += 1
        active = self.current(slot)
        try:
            step = ro.start(
                rollout_id=f"r{self.serial}",
                slot=slot,
                baseline=self.production[slot],
                candidate=f"{slot}-rel-{self.serial}",
                policy=policy,
                salt=f"r{self.serial}",
                actor="olga",
                now=self.now,
                approval_required=approval,
                active=active,
            )
        except RolloutActive:
            assert active is not None and active.active
            return
        assert active is None or not active.active
        self.history[slot].append(step.after)

    @rule(
        slot=st.sampled_from(SLOTS),
        kind=LIKELY_VERDICTS,
        override=st.booleans(),
        complete=st.sampled_from((False, False, False, True)),
    )
    def advance(self, slot: str, kind: str, override: bool, complete: bool) -> None:
        r = self.current(slot)
        if r is None:
            return
        verdict = verdict_for(r, kind)
        leave = ro.complete if complete else ro.advance
        try:
            step = leave(
                r, verdict, actor="ada", now=self.now, override=Override("because") if override else None
            )
        except InvalidTransition:
            last_stage = r.stage_index == len(r.policy.stages) - 2
            assert r.phase is not Phase.RUNNING or (complete and not last_stage)
            return
        except AdvanceRefused:
            assert not verdict.passed and (not override or verdict.breach)
            return
        except ApprovalRequired:
            assert r.approval_required and r.approved_by is None
            assert r.policy.stages[r.stage_index + 1].traffic > 0
            return
        # no advance without a PASS or an audited override, never over a breach
        assert verdict.passed or (override and step.overridden and step.evidence["override"]["reason"])
        assert verdict.breach is None
        assert step.after.stage_index == r.stage_index + 1
        self.record(step)

    @rule(slot=st.sampled_from(SLOTS))
    def a_good_day(self, slot: str) -> None:
        """Approval when needed, then one stage further on a PASS: lets rollouts reach deep stages."""
        r = self.current(slot)
        if r is None or r.phase not in (Phase.AWAITING_APPROVAL, Phase.RUNNING):
            return
        if r.approval_required and r.approved_by is None:
            self.record(ro.approve(r, actor="rita", now=self.now))
            r = self.history[slot][-1]
        step = ro.advance(r, verdict_for(r, "pass"), actor="olga", now=self.now)
        assert step.after.stage_index == r.stage_index + 1 and not step.overridden
        self.record(step)

    @rule(slot=st.sampled_from(SLOTS), by_starter=st.booleans())
    def approve(self, slot: str, by_starter: bool) -> None:
        r = self.current(slot)
        if r is None:
            return
        try:
            self.record(ro.approve(r, actor="olga" if by_starter else "rita", now=self.now))
        except (InvalidTransition, RolloutRefused, SeparationOfDuties):
            assert not r.active or not r.approval_required or r.approved_by or by_starter

    @rule(
        slot=st.sampled_from(SLOTS),
        item=st.sampled_from(("rollback-tested", "oncall-briefed", "smoke-tested")),
    )
    def check(self, slot: str, item: str) -> None:
        r = self.current(slot)
        if r is None:
            return
        try:
            self.record(ro.check(r, item, actor="olga", now=self.now))
        except (InvalidTransition, RolloutRefused, UnknownChecklistItem):
            assert not r.active or item in r.checked or item not in r.policy.checklist_items

    @rule(slot=st.sampled_from(SLOTS), action=OPERATIONS)
    def operate(self, slot: str, action: str) -> None:
        r = self.current(slot)
        if r is None:
            return
        try:
            if action == "pause":
                step = ro.pause(r, actor="olga", now=self.now)
            elif action == "resume":
                step = ro.resume(r, actor="olga", now=self.now)
            elif action == "abort":
                step = ro.abort(r, actor="olga", now=self.now, reason="operator's call")
            else:
                step = ro.rollback(r, actor="olga", now=self.now, reason="operator's call")
        except InvalidTransition:
            assert (r.phase, Action(action)) not in TRANSITIONS
            return
        self.record(step)

    @rule(slot=st.sampled_from(SLOTS), kind=QUIET_TICKS)
    def tick(self, slot: str, kind: str) -> None:
        r = self.current(slot)
        if r is None or not r.active:
            return
        verdict = verdict_for(r, kind)
        step = ro.tick(r, verdict, now=self.now)
        if kind == "breach" or (kind in ("fail", "expired") and r.phase is Phase.RUNNING):
            assert step is not None and step.after.phase is Phase.ROLLED_BACK
        else:
            assert step is None
        if step is not None:
            self.record(step)

    @rule(hours=st.integers(min_value=1, max_value=96))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @invariant()
    def at_most_one_active_rollout_per_slot(self) -> None:
        for slot in SLOTS:
            assert sum(r.active for r in self.history[slot]) <= 1
            assert all(not r.active for r in self.history[slot][:-1])

    @invariant()
    def the_traffic_split_is_always_the_stages(self) -> None:
        for slot in SLOTS:
            r = self.current(slot)
            if r is None:
                continue
            split = ro.split(r)
            if r.phase in IN_STAGE_PHASES:
                assert split.candidate == r.stage.traffic
                assert split.shadow_sample == (r.policy.shadow_sample if r.stage.traffic == 0 else 0.0)
                table = ro.routing_table(slot, 1, r.baseline, r)
                assert (table.traffic, table.shadow_sample, table.candidate) == (
                    split.candidate,
                    split.shadow_sample,
                    r.candidate,
                )
            elif r.phase is Phase.PRODUCTION:
                assert split.candidate == 100 and self.production[slot] == r.candidate
            else:
                assert split.candidate == 0
                if r.active:
                    assert ro.routing_table(slot, 1, r.baseline, r).candidate is None

    @invariant()
    def real_traffic_only_after_a_required_approval(self) -> None:
        for slot in SLOTS:
            r = self.current(slot)
            if r is not None and r.approval_required and ro.split(r).candidate > 0:
                assert r.approved_by is not None

    @invariant()
    def every_stage_change_had_a_pass_or_an_override(self) -> None:
        for step in self.transitions[-1:]:
            if step.action in (Action.ADVANCE, Action.COMPLETE):
                assert step.evidence["verdict"]["verdict"] == "pass" or step.overridden


TestRolloutMachine = RolloutMachine.TestCase
TestRolloutMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_replace_keeps_rollouts_immutable() -> None:
    r = started()
    with pytest.raises(AttributeError):
        r.phase = Phase.ABORTED  # type: ignore[misc]
    assert replace(r, phase=Phase.ABORTED).phase is Phase.ABORTED and r.phase is Phase.RUNNING

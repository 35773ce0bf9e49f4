"""The rollout state machine: a transition table and pure functions over `Rollout` values.

A rollout moves one candidate release through the stages of a track policy on one slot. Its
*phase* says what it is doing; while running or paused it sits in one stage, whose traffic share
the candidate gets (0 = shadow):

    awaiting_approval ──approve──▶ running(stage i) ──advance──▶ running(stage i+1) … ──complete──▶ production
          │                          │      ▲
          │                        pause  resume
          │                          ▼      │
          └───────abort / rollback── paused ┘ ──abort──▶ aborted      rollback / expire ──▶ rolled_back

`TRANSITIONS` is the whole table of (phase, action) → phase; an action it does not list raises
`InvalidTransition` naming the actions that are accepted. On top of the table:

- a slot has at most one active rollout (`start` refuses while `active` is one: `RolloutActive`);
- `advance`/`complete` need the current stage's verdict to be PASS, or an explicit admin
  `Override` (audited with its reason); a safety breach cannot be overridden (`AdvanceRefused`);
- when the track policy requires approval for the candidate's model change, the first stage with
  real traffic is not entered before a reviewer approved (`ApprovalRequired`) — an override does
  not replace an approval;
- while running or paused the candidate's traffic is exactly the stage's (`split`); pausing holds
  the traffic and stops the stage clock; `tick` applies the automatic rules: a safety breach rolls
  back at once (even when paused), a failed stage rolls back, an expired one expires.

Every function takes the current time and the actor as arguments and returns a `Transition`: the
rollout before and after, and the evidence the audit event must carry. Nothing here reads a clock
or writes anything; the service persists `after` and the audit event in one transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from charter.domain.gate import Observations, StageVerdict, evaluate_stage
from charter.domain.roles import require_different
from charter.domain.routing import RoutingTable
from charter.domain.times import iso_or_none, require_aware, time_or_none
from charter.domain.tracks import Stage, TrackPolicy, format_duration
from charter.errors import (
    AdvanceRefused,
    ApprovalRequired,
    InvalidInput,
    InvalidTransition,
    RolloutActive,
    RolloutRefused,
    UnknownChecklistItem,
)

SYSTEM_ACTOR = "charter"  # the actor of automatic transitions (tick)


class Phase(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    PAUSED = "paused"
    PRODUCTION = "production"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


ACTIVE_PHASES = frozenset({Phase.AWAITING_APPROVAL, Phase.RUNNING, Phase.PAUSED})
IN_STAGE_PHASES = frozenset({Phase.RUNNING, Phase.PAUSED})


class Action(enum.StrEnum):
    START = "start"
    APPROVE = "approve"
    CHECK = "check"
    ADVANCE = "advance"
    COMPLETE = "complete"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    ROLLBACK = "rollback"
    EXPIRE = "expire"


# (phase, action) → phase. START creates a rollout (`start`), so it has no row. ADVANCE moves to
# the next stage; COMPLETE moves from the last stage before production into production.
TRANSITIONS: Mapping[tuple[Phase, Action], Phase] = {
    (Phase.AWAITING_APPROVAL, Action.APPROVE): Phase.RUNNING,
    (Phase.AWAITING_APPROVAL, Action.CHECK): Phase.AWAITING_APPROVAL,
    (Phase.AWAITING_APPROVAL, Action.ABORT): Phase.ABORTED,
    (Phase.AWAITING_APPROVAL, Action.ROLLBACK): Phase.ROLLED_BACK,
    (Phase.RUNNING, Action.APPROVE): Phase.RUNNING,
    (Phase.RUNNING, Action.CHECK): Phase.RUNNING,
    (Phase.RUNNING, Action.ADVANCE): Phase.RUNNING,
    (Phase.RUNNING, Action.COMPLETE): Phase.PRODUCTION,
    (Phase.RUNNING, Action.PAUSE): Phase.PAUSED,
    (Phase.RUNNING, Action.ABORT): Phase.ABORTED,
    (Phase.RUNNING, Action.ROLLBACK): Phase.ROLLED_BACK,
    (Phase.RUNNING, Action.EXPIRE): Phase.ROLLED_BACK,
    (Phase.PAUSED, Action.APPROVE): Phase.PAUSED,
    (Phase.PAUSED, Action.CHECK): Phase.PAUSED,
    (Phase.PAUSED, Action.RESUME): Phase.RUNNING,
    (Phase.PAUSED, Action.ABORT): Phase.ABORTED,
    (Phase.PAUSED, Action.ROLLBACK): Phase.ROLLED_BACK,
}


def accepted_actions(phase: Phase) -> list[str]:
    return [action.value for (p, action) in TRANSITIONS if p is phase]


def next_phase(phase: Phase, action: Action, status: str | None = None) -> Phase:
    try:
        return TRANSITIONS[phase, action]
    except KeyError:
        raise InvalidTransition(status or phase.value, action.value, accepted_actions(phase)) from None


# --- values --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """An admin's decision to advance without a PASS. The service checks the admin role; the
    reason is recorded in the audit event."""

    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise InvalidInput(
                "an override needs a reason (--reason TEXT); it is recorded in the audit ledger"
            )


@dataclass(frozen=True)
class TrafficSplit:
    """The candidate's share of requests in percent, and the share (0–1) of requests that also run
    it in shadow."""

    candidate: float
    shadow_sample: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "candidate": self.candidate,
            "baseline": 100 - self.candidate,
            "shadow_sample": self.shadow_sample,
        }


@dataclass(frozen=True)
class Rollout:
    """One rollout's state. `policy` is the track policy pinned when the rollout started."""

    id: str
    slot: str
    baseline: str  # the slot's production release when the rollout started
    candidate: str  # the release being rolled out
    policy: TrackPolicy
    salt: str  # fixed for the whole rollout: routing stays monotonic across stages
    started_by: str
    started_at: datetime
    phase: Phase
    stage_index: int
    stage_entered_at: datetime
    approval_required: bool
    approved_by: str | None = None
    approved_at: datetime | None = None
    checked: frozenset[str] = frozenset()
    paused_at: datetime | None = None
    paused_total: timedelta = timedelta(0)  # paused time in the current stage
    ended_at: datetime | None = None
    end_reason: str | None = None

    @property
    def stage(self) -> Stage:
        return self.policy.stages[self.stage_index]

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def status(self) -> str:
        """What a person reads: the stage name while running, else the phase."""
        if self.phase is Phase.RUNNING:
            return self.stage.name
        if self.phase is Phase.PAUSED:
            return f"paused in {self.stage.name}"
        return self.phase.value

    def elapsed(self, now: datetime) -> timedelta:
        """How long the current stage has run, paused time excluded (0 outside a stage)."""
        if self.phase not in IN_STAGE_PHASES:
            return timedelta(0)
        until = self.paused_at or now
        return max(until - self.stage_entered_at - self.paused_total, timedelta(0))

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe state for storage and display; `from_dict(as_dict(), policy)` restores it."""
        return {
            "id": self.id,
            "slot": self.slot,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "policy": self.policy.name,
            "policy_digest": self.policy.digest(),
            "salt": self.salt,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat(),
            "phase": self.phase.value,
            "status": self.status,
            "stage": self.stage.name,
            "stage_index": self.stage_index,
            "stage_entered_at": self.stage_entered_at.isoformat(),
            "traffic": split(self).as_dict(),
            "approval_required": self.approval_required,
            "approved_by": self.approved_by,
            "approved_at": iso_or_none(self.approved_at),
            "checked": sorted(self.checked),
            "paused_at": iso_or_none(self.paused_at),
            "paused_seconds": self.paused_total.total_seconds(),
            "ended_at": iso_or_none(self.ended_at),
            "end_reason": self.end_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], policy: TrackPolicy) -> Rollout:
        if data["policy_digest"] != policy.digest():
            raise ValueError(
                f"rollout {data['id']} was started under another version of policy {data['policy']}"
            )
        return cls(
            id=data["id"],
            slot=data["slot"],
            baseline=data["baseline"],
            candidate=data["candidate"],
            policy=policy,
            salt=data["salt"],
            started_by=data["started_by"],
            started_at=datetime.fromisoformat(data["started_at"]),
            phase=Phase(data["phase"]),
            stage_index=int(data["stage_index"]),
            stage_entered_at=datetime.fromisoformat(data["stage_entered_at"]),
            approval_required=bool(data["approval_required"]),
            approved_by=data.get("approved_by"),
            approved_at=time_or_none(data.get("approved_at")),
            checked=frozenset(data.get("checked", ())),
            paused_at=time_or_none(data.get("paused_at")),
            paused_total=timedelta(seconds=float(data.get("paused_seconds", 0))),
            ended_at=time_or_none(data.get("ended_at")),
            end_reason=data.get("end_reason"),
        )


@dataclass(frozen=True)
class Transition:
    """One step: the rollout `before` (None for start) and `after`, and what the audit event carries."""

    action: Action
    before: Rollout | None
    after: Rollout
    actor: str
    at: datetime
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def audit_action(self) -> str:
        return f"rollout.{self.action.value}"

    @property
    def overridden(self) -> bool:
        return self.evidence.get("override") is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "rollout": self.after.id,
            "slot": self.after.slot,
            "candidate": self.after.candidate,
            "from": self.before.status if self.before else None,
            "to": self.after.status,
            "traffic": split(self.after).as_dict(),
            "actor": self.actor,
            "at": self.at.isoformat(),
            **self.evidence,
        }


# --- the actions ---------------------------------------------------------------------------------


def start(
    *,
    rollout_id: str,
    slot: str,
    baseline: str,
    candidate: str,
    policy: TrackPolicy,
    salt: str,
    actor: str,
    now: datetime,
    approval_required: bool,
    active: Rollout | None,
) -> Transition:
    """Start a rollout of `candidate` on `slot`, whose production release is `baseline`.

    `active` is the slot's current active rollout, if any (the service reads it under the same
    transaction); `approval_required` is `policy.needs_approval(change)` for the candidate's model
    change against production's. The checks of the model promotion gate and prompt validation
    that precede the first stage with real traffic are the service's.
    """
    require_aware(now)
    if active is not None and active.active:
        raise RolloutActive(slot, active.id, active.status)
    if candidate == baseline:
        raise RolloutRefused(
            f"release {candidate} is already the production release of slot {slot}; roll out a "
            "different release",
            slot=slot,
            release=candidate,
        )
    first = policy.stages[0]
    waits = approval_required and first.traffic > 0
    rollout = Rollout(
        id=rollout_id,
        slot=slot,
        baseline=baseline,
        candidate=candidate,
        policy=policy,
        salt=salt,
        started_by=actor,
        started_at=now,
        phase=Phase.AWAITING_APPROVAL if waits else Phase.RUNNING,
        stage_index=0,
        stage_entered_at=now,
        approval_required=approval_required,
    )
    return Transition(
        Action.START,
        None,
        rollout,
        actor,
        now,
        {
            "policy": policy.name,
            "policy_digest": policy.digest(),
            "approval_required": approval_required,
        },
    )


def approve(rollout: Rollout, *, actor: str, now: datetime) -> Transition:
    """A reviewer's approval of the candidate's model change (the service checks the role and that
    the approver did not author the model)."""
    phase = next_phase(rollout.phase, Action.APPROVE, rollout.status)
    if not rollout.approval_required:
        raise RolloutRefused(
            f"rollout {rollout.id} needs no approval: its track policy does not require one for this change",
            rollout=rollout.id,
        )
    if rollout.approved_by is not None:
        raise RolloutRefused(
            f"rollout {rollout.id} was already approved by {rollout.approved_by} at "
            f"{iso_or_none(rollout.approved_at)}",
            rollout=rollout.id,
        )
    require_different(actor, rollout.started_by, "nobody approves a rollout they started")
    after = replace(rollout, phase=phase, approved_by=actor, approved_at=now)
    if rollout.phase is Phase.AWAITING_APPROVAL:
        after = replace(after, stage_entered_at=now)
    return Transition(Action.APPROVE, rollout, after, actor, now)


def check(rollout: Rollout, item: str, *, actor: str, now: datetime) -> Transition:
    """Check off a manual checklist item (`rollback-tested`, `oncall-briefed`, …)."""
    phase = next_phase(rollout.phase, Action.CHECK, rollout.status)
    if item not in rollout.policy.checklist_items:
        raise UnknownChecklistItem(item, list(rollout.policy.checklist_items))
    if item in rollout.checked:
        raise RolloutRefused(f"checklist item {item} of rollout {rollout.id} is already checked", item=item)
    after = replace(rollout, phase=phase, checked=rollout.checked | {item})
    return Transition(Action.CHECK, rollout, after, actor, now, {"item": item})


def advance(
    rollout: Rollout, verdict: StageVerdict, *, actor: str, now: datetime, override: Override | None = None
) -> Transition:
    """Leave the current stage for the next one — into production from the last stage (recorded as
    COMPLETE). Needs `verdict` (of the current stage, evaluated now) to PASS, or `override`."""
    return _leave_stage(rollout, verdict, actor=actor, now=now, override=override, only_complete=False)


def complete(
    rollout: Rollout, verdict: StageVerdict, *, actor: str, now: datetime, override: Override | None = None
) -> Transition:
    """Enter production from the last stage before it; refused from any earlier stage."""
    return _leave_stage(rollout, verdict, actor=actor, now=now, override=override, only_complete=True)


def pause(rollout: Rollout, *, actor: str, now: datetime, reason: str = "") -> Transition:
    """Hold the rollout where it is: the traffic split stays, the stage clock stops."""
    phase = next_phase(rollout.phase, Action.PAUSE, rollout.status)
    after = replace(rollout, phase=phase, paused_at=now)
    return Transition(Action.PAUSE, rollout, after, actor, now, {"reason": reason or None})


def resume(rollout: Rollout, *, actor: str, now: datetime) -> Transition:
    phase = next_phase(rollout.phase, Action.RESUME, rollout.status)
    assert rollout.paused_at is not None
    paused = max(now - rollout.paused_at, timedelta(0))
    after = replace(rollout, phase=phase, paused_at=None, paused_total=rollout.paused_total + paused)
    return Transition(Action.RESUME, rollout, after, actor, now, {"paused": format_duration(paused)})


def abort(rollout: Rollout, *, actor: str, now: datetime, reason: str) -> Transition:
    """Stop the rollout by decision: all traffic back to the production release."""
    if not reason.strip():
        raise InvalidInput(
            "aborting a rollout needs a reason (--reason TEXT); it is recorded in the audit ledger"
        )
    return _end(rollout, Action.ABORT, actor=actor, now=now, reason=reason)


def rollback(
    rollout: Rollout, *, actor: str, now: datetime, reason: str, verdict: StageVerdict | None = None
) -> Transition:
    """Take the candidate out at once (an operator's call, or `tick` on a breach or failed stage)."""
    if not reason.strip():
        raise InvalidInput("a rollback needs a reason; it is recorded in the audit ledger")
    return _end(rollout, Action.ROLLBACK, actor=actor, now=now, reason=reason, verdict=verdict)


def expire(
    rollout: Rollout, verdict: StageVerdict, *, actor: str = SYSTEM_ACTOR, now: datetime
) -> Transition:
    """The stage reached its maximum duration without PASS: the candidate is rolled back."""
    _same_stage(rollout, verdict)
    if not verdict.expired:
        raise RolloutRefused(
            f"stage {verdict.stage} has not expired: it has run {format_duration(verdict.elapsed)} of "
            f"at most {format_duration(verdict.max_duration)}, or its verdict is PASS",
            stage=verdict.stage,
        )
    return _end(rollout, Action.EXPIRE, actor=actor, now=now, reason=verdict.reason, verdict=verdict)


def tick(
    rollout: Rollout, verdict: StageVerdict, *, now: datetime, actor: str = SYSTEM_ACTOR
) -> Transition | None:
    """The automatic rules, applied to a fresh verdict of the current stage: a safety breach rolls
    back at once (in any active phase); a running stage that expired expires; one that failed is
    rolled back. None when nothing is due (advancing on PASS stays a person's decision)."""
    if not rollout.active:
        return None
    _same_stage(rollout, verdict)
    if verdict.breach:
        reason = f"safety breach: {verdict.breach}"
        return rollback(rollout, actor=actor, now=now, reason=reason, verdict=verdict)
    if rollout.phase is not Phase.RUNNING or not verdict.failed:
        return None
    if verdict.expired:
        return expire(rollout, verdict, actor=actor, now=now)
    return rollback(
        rollout,
        actor=actor,
        now=now,
        reason=f"stage {verdict.stage} failed: {verdict.reason}",
        verdict=verdict,
    )


# --- derived values ------------------------------------------------------------------------------


def evaluate(rollout: Rollout, observations: Observations, *, now: datetime) -> StageVerdict:
    """The gate verdict of the rollout's current stage at `now`."""
    return evaluate_stage(
        rollout.policy, rollout.stage, observations, elapsed=rollout.elapsed(now), checked=rollout.checked
    )


def split(rollout: Rollout) -> TrafficSplit:
    """The traffic the candidate gets: exactly its stage's while running or paused, everything once
    in production, nothing otherwise."""
    if rollout.phase in IN_STAGE_PHASES:
        stage = rollout.stage
        return TrafficSplit(stage.traffic, rollout.policy.shadow_sample if stage.is_shadow else 0.0)
    if rollout.phase is Phase.PRODUCTION:
        return TrafficSplit(100.0)
    return TrafficSplit(0.0)


def routing_table(slot: str, version: int, production: str, rollout: Rollout | None) -> RoutingTable:
    """The slot's routing table: production only, or production plus the rollout's candidate at
    its stage's split. `version` is the table's new version number (the service increments it)."""
    if rollout is None or rollout.phase not in IN_STAGE_PHASES:
        return RoutingTable.production_only(slot, version, production)
    if rollout.slot != slot or rollout.baseline != production:
        raise ValueError(f"rollout {rollout.id} is not a rollout of slot {slot} against release {production}")
    traffic = split(rollout)
    return RoutingTable(
        slot=slot,
        version=version,
        production=production,
        candidate=rollout.candidate,
        rollout=rollout.id,
        stage=rollout.stage.name,
        traffic=traffic.candidate,
        shadow_sample=traffic.shadow_sample,
        salt=rollout.salt,
    )


# --- internals -----------------------------------------------------------------------------------


def _leave_stage(
    rollout: Rollout,
    verdict: StageVerdict,
    *,
    actor: str,
    now: datetime,
    override: Override | None,
    only_complete: bool,
) -> Transition:
    following = rollout.stage_index + 1
    into_production = following == len(rollout.policy.stages) - 1
    action = Action.COMPLETE if into_production else Action.ADVANCE
    if only_complete and not into_production:
        raise InvalidTransition(
            rollout.status,
            Action.COMPLETE.value,
            [a for a in accepted_actions(rollout.phase) if a != Action.COMPLETE.value],
        )
    phase = next_phase(rollout.phase, action, rollout.status)
    _same_stage(rollout, verdict)
    stage = rollout.stage
    if verdict.breach:
        raise AdvanceRefused(
            stage.name,
            f"safety breach: {verdict.breach}",
            verdict.as_dict(),
            "a safety breach cannot be overridden; roll back (`charter rollout tick` does it) and "
            "start again",
        )
    if not verdict.passed and override is None:
        raise AdvanceRefused(
            stage.name,
            f"the gate is {verdict.verdict.value.upper()} ({verdict.reason})",
            verdict.as_dict(),
            "advance when every criterion passes and the minimum duration has passed, or an admin may "
            "advance with --override --reason TEXT (audited)",
        )
    target = rollout.policy.stages[following]
    if target.traffic > 0 and rollout.approval_required and rollout.approved_by is None:
        raise ApprovalRequired(rollout.slot, target.name, "the candidate's model change requires approval")
    after = replace(
        rollout, phase=phase, stage_index=following, stage_entered_at=now, paused_total=timedelta(0)
    )
    if into_production:
        after = replace(after, ended_at=now, end_reason="reached production")
    overridden = override is not None and not verdict.passed
    evidence = {
        "verdict": verdict.as_dict(),
        "override": {"by": actor, "reason": override.reason} if override is not None and overridden else None,
    }
    return Transition(action, rollout, after, actor, now, evidence)


def _end(
    rollout: Rollout,
    action: Action,
    *,
    actor: str,
    now: datetime,
    reason: str,
    verdict: StageVerdict | None = None,
) -> Transition:
    phase = next_phase(rollout.phase, action, rollout.status)
    after = replace(rollout, phase=phase, paused_at=None, ended_at=now, end_reason=reason)
    evidence: dict[str, Any] = {"reason": reason, "automatic": actor == SYSTEM_ACTOR}
    if verdict is not None:
        evidence["verdict"] = verdict.as_dict()
    return Transition(action, rollout, after, actor, now, evidence)


def _same_stage(rollout: Rollout, verdict: StageVerdict) -> None:
    if verdict.stage != rollout.stage.name:
        raise ValueError(
            f"the verdict is for stage {verdict.stage}, but rollout {rollout.id} is in {rollout.stage.name}"
        )

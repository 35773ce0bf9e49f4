"""Rollouts: a candidate release moved through its slot's track, one persisted transition at a time.

`reg.rollouts`: start, status, advance, approve, check, pause, resume, abort, tick, incident.
Every action is one database transaction: authorise, load the rollout's persisted state, judge it
with the pure rules (`charter.domain.rollout`, `charter.domain.gate`), then store the new state,
the transition row and the audit event together — so a process killed at any point leaves the
rollout exactly before or exactly after the step, never half-way. Reaching production switches
the slot's production release, moves the model's `production` alias and the prompts' production
pointers, and stores the metrics observed on those versions, in that same transaction.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.domain import rollout as machine
from charter.domain.criteria import SEVERITIES
from charter.domain.gate import StageVerdict
from charter.domain.roles import Action, require_different
from charter.domain.rollout import Override, Rollout, Transition
from charter.domain.tracks import parse_track_policy
from charter.errors import GateRefused, InvalidInput, NotFound, Refused
from charter.service.access import authorize
from charter.service.production import promote_versions, record_metrics
from charter.service.releases import require_slot, resolve_release
from charter.service.rollout_gate import (
    model_change,
    observe,
    observed_metrics,
    pre_traffic_checks,
    slot_policy,
)
from charter.service.rollout_results import IncidentReport, RolloutStatus, RolloutStep, TickItem, TickReport
from charter.service.rollout_series import RolloutSeries, metric_series
from charter.service.router import slot_table
from charter.storage.rollouts import RolloutRecord, TransitionRecord
from charter.storage.slots import ReleaseRecord, SlotRecord
from charter.storage.store import Tx
from charter.storage.transactions import uuid7

if TYPE_CHECKING:
    from charter.service.registry import Registry


@dataclass(frozen=True)
class _Loaded:
    record: RolloutRecord
    rollout: Rollout
    slot: SlotRecord
    baseline: ReleaseRecord
    candidate: ReleaseRecord


class RolloutService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def _actor(self) -> str:
        return self.registry.actor

    # --- starting -----------------------------------------------------------------------------

    def start(self, slot: str, *, release: str, rollback_plan: str) -> RolloutStep:
        """Start rolling `release` out on `slot` under the slot's track policy (pinned now). When
        the first stage sends real traffic, the checks before real traffic run now (see
        `charter.service.rollout_gate`); after a shadow stage they run when it is left."""
        if not rollback_plan.strip():
            raise InvalidInput(
                "a rollout needs a rollback plan (--rollback-plan TEXT): how to go back if it misbehaves"
            )
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.OPERATE_ROLLOUT)
            slot_record = require_slot(tx, slot)
            candidate = resolve_release(tx, release, slot=slot)
            production = tx.slots.production(slot_record.id)
            if production is None:
                raise Refused(
                    f"slot {slot} has no production release to compare a candidate with; make its first "
                    f"release production with `charter slot bootstrap {slot} --release ID`",
                    slot=slot,
                )
            baseline = tx.slots.release_by_id(production.release_id)
            policy = slot_policy(tx, slot_record)
            active = tx.rollouts.active_rollout(slot_record.id)
            change = model_change(
                tx.models.version_by_id(baseline.model_version_id),
                tx.models.version_by_id(candidate.model_version_id),
            )
            now, rollout_id = tx.clock.now(), uuid7(tx.clock.now())
            transition = machine.start(
                rollout_id=rollout_id,
                slot=slot,
                baseline=baseline.digest,
                candidate=candidate.digest,
                policy=policy,
                salt=rollout_id,
                actor=self._actor,
                now=now,
                approval_required=policy.needs_approval(change),
                active=None if active is None else restore(active),
            )
            report = None
            if policy.stages[0].traffic > 0:
                report = _require_pre_traffic(tx, baseline, candidate, rollback_plan)
            tx.rollouts.insert_rollout(
                rollout_id,
                slot_record.id,
                baseline_id=baseline.id,
                candidate_id=candidate.id,
                policy_document=policy.as_dict(),
                state=transition.after.as_dict(),
                rollback_plan=rollback_plan.strip(),
                gate_report=report,
                at=now,
                by=self._actor,
            )
            step = _record(
                tx,
                slot_record,
                transition,
                revision=1,
                baseline=baseline,
                candidate=candidate,
                pre_traffic=report,
                extra={
                    "model_change": None if change is None else change.word,
                    "rollback_plan": rollback_plan.strip(),
                },
            )
        self.registry.routing_changed()
        return step

    # --- reading ------------------------------------------------------------------------------

    def status(self, slot: str) -> RolloutStatus:
        """The slot's active rollout (else its latest), with the current stage's gate evaluated now."""
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.READ)
            slot_record = require_slot(tx, slot)
            record = tx.rollouts.active_rollout(slot_record.id) or tx.rollouts.latest_rollout(slot_record.id)
            if record is None:
                raise NotFound(
                    f"a rollout of slot {slot}",
                    f"start one with `charter rollout start {slot} --release ID --rollback-plan TEXT`",
                )
            rollout = restore(record)
            verdict = None
            if rollout.active:
                verdict = machine.evaluate(
                    rollout, observe(tx, rollout, record.candidate_id, tx.clock.now()), now=tx.clock.now()
                ).as_dict()
            table = slot_table(tx, slot_record)
            return RolloutStatus(
                slot,
                rollout.as_dict(),
                verdict,
                None if table is None else table.as_dict(),
                record.rollback_plan,
                record.gate_report,
                tuple(_transition_view(t) for t in tx.rollouts.transitions(record.id)),
            )

    # --- moving ---------------------------------------------------------------------------------

    def advance(
        self, slot: str, *, override: bool = False, reason: str | None = None, note: str = ""
    ) -> RolloutStep:
        """Leave the current stage for the next (into production from the last). Needs the stage's
        gate to PASS now, or an admin's `override` with a `reason` (audited). Entering the first
        stage with real traffic also needs the checks before real traffic to pass. `note`: why the
        operator advances (optional; recorded in the audit event)."""
        decision = Override(reason or "") if override else None
        if not override and reason:
            raise InvalidInput("--reason goes with --override; a normal advance needs none")
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.OVERRIDE if override else Action.OPERATE_ROLLOUT)
            loaded = _load_active(tx, slot)
            now = tx.clock.now()
            verdict = _verdict(tx, loaded, now)
            transition = machine.advance(
                loaded.rollout, verdict, actor=self._actor, now=now, override=decision
            )
            report = None
            entering = transition.after.stage
            if entering.traffic > 0 and loaded.rollout.stage.traffic == 0 and not _checked(loaded.record):
                report = _require_pre_traffic(
                    tx, loaded.baseline, loaded.candidate, loaded.record.rollback_plan
                )
            step = _apply(tx, loaded, transition, pre_traffic=report, extra=_noted(note))
        self.registry.routing_changed()
        return step

    def approve(self, slot: str, *, note: str = "") -> RolloutStep:
        """A reviewer's approval of the candidate's model change, before the first stage with real
        traffic: never by whoever started the rollout or registered the candidate's model version."""
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.APPROVE_ROLLOUT)
            loaded = _load_active(tx, slot)
            version = tx.models.version_by_id(loaded.candidate.model_version_id)
            require_different(
                self._actor,
                version.created_by,
                f"{version.created_by} registered {version.ref}, the candidate's model version, and nobody "
                "approves a rollout of a model they authored",
            )
            transition = machine.approve(loaded.rollout, actor=self._actor, now=tx.clock.now())
            step = _apply(tx, loaded, transition, extra=_noted(note))
        self.registry.routing_changed()
        return step

    def check(self, slot: str, *, item: str, note: str = "") -> RolloutStep:
        """Check off a manual checklist item (`rollback-tested`, `oncall-briefed`, …)."""
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.OPERATE_ROLLOUT)
            loaded = _load_active(tx, slot)
            transition = machine.check(loaded.rollout, item, actor=self._actor, now=tx.clock.now())
            return _apply(tx, loaded, transition, extra=_noted(note))

    def pause(self, slot: str, *, reason: str = "") -> RolloutStep:
        """Hold the rollout: the traffic split stays, the stage clock stops."""
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.OPERATE_ROLLOUT)
            loaded = _load_active(tx, slot)
            transition = machine.pause(loaded.rollout, actor=self._actor, now=tx.clock.now(), reason=reason)
            return _apply(tx, loaded, transition)

    def resume(self, slot: str, *, note: str = "") -> RolloutStep:
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.OPERATE_ROLLOUT)
            loaded = _load_active(tx, slot)
            transition = machine.resume(loaded.rollout, actor=self._actor, now=tx.clock.now())
            return _apply(tx, loaded, transition, extra=_noted(note))

    def abort(self, slot: str, *, reason: str) -> RolloutStep:
        """Stop the rollout by decision: every request back to the production release."""
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.OPERATE_ROLLOUT)
            loaded = _load_active(tx, slot)
            step = _apply(
                tx,
                loaded,
                machine.abort(loaded.rollout, actor=self._actor, now=tx.clock.now(), reason=reason),
            )
        self.registry.routing_changed()
        return step

    # --- automatic rules ------------------------------------------------------------------------

    def tick(self, slot: str | None = None) -> TickReport:
        """Evaluate every active rollout (or one slot's) and apply the automatic rules: a safety
        breach rolls the candidate back at once, a failed stage rolls it back, an expired one
        expires. Each rollout is judged in its own transaction; advancing stays a person's call."""
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.OPERATE_ROLLOUT)
            if slot is not None:
                active = tx.rollouts.active_rollout(require_slot(tx, slot).id)
                ids = [] if active is None else [active.id]
            else:
                ids = [r.id for r in tx.rollouts.active_rollouts()]
            started = tx.clock.now()
        items = []
        for rollout_id in ids:
            with self.registry.store.write() as tx:
                authorize(tx, self._actor, Action.OPERATE_ROLLOUT)
                record = tx.rollouts.rollout(rollout_id)
                if record is None or not record.active:
                    continue
                loaded = _load(tx, record)
                now = tx.clock.now()
                verdict = _verdict(tx, loaded, now)
                transition = machine.tick(loaded.rollout, verdict, now=now)
                step = None
                if transition is not None:
                    step = _apply(tx, loaded, transition, extra={"triggered_by": self._actor})
                items.append(
                    TickItem(
                        record.slot,
                        rollout_id,
                        loaded.rollout.status,
                        verdict.verdict.value,
                        verdict.reason,
                        None if transition is None else transition.action.value,
                        step,
                    )
                )
        if any(i.step is not None for i in items):
            self.registry.routing_changed()
        return TickReport(started, tuple(items))

    def incident(self, slot: str, *, severity: str, release: str, summary: str) -> IncidentReport:
        """Record an incident against a release of the slot. A P0 against an active rollout's
        candidate is evaluated at once, in the same transaction: the candidate is rolled back."""
        level = severity.strip().upper()
        if level not in SEVERITIES:
            raise InvalidInput(f"severity {severity!r} is not valid; accepted: {', '.join(SEVERITIES)}")
        if not summary.strip():
            raise InvalidInput("an incident needs a summary (--summary TEXT)")
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.REPORT_INCIDENT)
            slot_record = require_slot(tx, slot)
            target = resolve_release(tx, release, slot=slot)
            active = tx.rollouts.active_rollout(slot_record.id)
            involved = (
                active
                if active is not None and target.id in (active.baseline_id, active.candidate_id)
                else None
            )
            event = tx.ledger.append(
                self._actor,
                "incident.reported",
                slot_record.subject,
                {"severity": level, "release": target.digest, "summary": summary.strip(),
                 "rollout": None if involved is None else involved.id,
                 "against": _against(involved, target.id)},
            )  # fmt: skip
            record = tx.rollouts.add_incident(
                slot_record.id, target.id, None if involved is None else involved.id, level, summary.strip(),
                at=tx.clock.now(), by=self._actor, audit_sequence=event.sequence,
            )  # fmt: skip
            rollback = None
            if level == "P0" and involved is not None and target.id == involved.candidate_id:
                loaded = _load(tx, involved)
                now = tx.clock.now()
                transition = machine.tick(loaded.rollout, _verdict(tx, loaded, now), now=now)
                if transition is not None:
                    rollback = _apply(
                        tx, loaded, transition, extra={"triggered_by": self._actor, "incident": record.id}
                    )
            incident = {
                "id": record.id, "slot": slot, "release": record.release, "rollout": record.rollout_id,
                "severity": level, "summary": record.summary, "at": record.at.isoformat(),
                "reported_by": record.reported_by, "audit_sequence": record.audit_sequence,
            }  # fmt: skip
        if rollback is not None:
            self.registry.routing_changed()
        return IncidentReport(incident, rollback)

    def series(self, slot: str) -> RolloutSeries:
        """The slot's active (else latest) rollout's gated metrics over time, candidate against
        baseline, with the bound each stage's criteria draw (see `charter.service.rollout_series`)."""
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.READ)
            slot_record = require_slot(tx, slot)
            record = tx.rollouts.active_rollout(slot_record.id) or tx.rollouts.latest_rollout(slot_record.id)
            if record is None:
                raise NotFound(f"a rollout of slot {slot}", "nothing has been rolled out on it yet")
            return metric_series(tx, record, restore(record), tx.clock.now())

    def incidents(self, slot: str) -> builtins.list[dict[str, Any]]:
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.READ)
            return [
                {"id": i.id, "release": i.release, "rollout": i.rollout_id, "severity": i.severity,
                 "summary": i.summary, "at": i.at.isoformat(), "reported_by": i.reported_by}
                for i in tx.rollouts.incidents_of(require_slot(tx, slot).id)
            ]  # fmt: skip


# --- functions over a transaction ----------------------------------------------------------------


def restore(record: RolloutRecord) -> Rollout:
    """The domain rollout a stored row holds (with the policy it pinned)."""
    return Rollout.from_dict(record.state, parse_track_policy(record.policy_document))


def _load(tx: Tx, record: RolloutRecord) -> _Loaded:
    return _Loaded(
        record,
        restore(record),
        tx.slots.slot_by_id(record.slot_id),
        tx.slots.release_by_id(record.baseline_id),
        tx.slots.release_by_id(record.candidate_id),
    )


def _load_active(tx: Tx, slot: str) -> _Loaded:
    slot_record = require_slot(tx, slot)
    record = tx.rollouts.active_rollout(slot_record.id)
    if record is None:
        latest = tx.rollouts.latest_rollout(slot_record.id)
        hint = (
            f"its latest rollout {latest.id} is {latest.state.get('status')}; " if latest is not None else ""
        ) + f"start one with `charter rollout start {slot} --release ID --rollback-plan TEXT`"
        raise NotFound(f"an active rollout on slot {slot}", hint)
    return _load(tx, record)


def _verdict(tx: Tx, loaded: _Loaded, now: datetime) -> StageVerdict:
    return machine.evaluate(loaded.rollout, observe(tx, loaded.rollout, loaded.candidate.id, now), now=now)


def _checked(record: RolloutRecord) -> bool:
    return bool(record.gate_report and record.gate_report.get("passed"))


def _require_pre_traffic(
    tx: Tx, baseline: ReleaseRecord, candidate: ReleaseRecord, rollback_plan: str
) -> dict[str, Any]:
    report = pre_traffic_checks(tx, baseline, candidate, rollback_plan)
    if not report.passed:
        raise GateRefused(report.summary(), report.as_dict())
    return report.as_dict()


def _apply(
    tx: Tx,
    loaded: _Loaded,
    transition: Transition,
    *,
    pre_traffic: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RolloutStep:
    """Persist a transition of an existing rollout (and, into production, its consequences)."""
    after = transition.after
    revision = tx.rollouts.update_rollout(
        after.id,
        expected_revision=loaded.record.revision,
        state=after.as_dict(),
        active=after.active,
        ended_at=after.ended_at,
        gate_report=pre_traffic,
    )
    return _record(
        tx, loaded.slot, transition, revision=revision, baseline=loaded.baseline, candidate=loaded.candidate,
        pre_traffic=pre_traffic, extra=extra, record=loaded.record,
    )  # fmt: skip


def _record(
    tx: Tx,
    slot: SlotRecord,
    transition: Transition,
    *,
    revision: int,
    baseline: ReleaseRecord,
    candidate: ReleaseRecord,
    pre_traffic: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    record: RolloutRecord | None = None,
) -> RolloutStep:
    """The audit event, the transition row, the routing version and — into production — the
    production switch, all in the caller's transaction."""
    before, after = transition.before, transition.after
    completes = transition.action is machine.Action.COMPLETE
    production = candidate.digest if completes else baseline.digest
    table_before = machine.routing_table(slot.name, 0, baseline.digest, before).as_dict() if before else None
    table_after = machine.routing_table(slot.name, 0, production, after).as_dict()
    version = tx.slots.bump_routing(slot.id) if table_before != table_after else slot.routing_version
    details = {k: v for k, v in transition.evidence.items() if k != "verdict"}
    payload = {
        "rollout": after.id,
        "action": transition.action.value,
        "from": None if before is None else before.status,
        "to": after.status,
        "phase": after.phase.value,
        "stage": after.stage.name,
        "candidate": after.candidate,
        "baseline": after.baseline,
        "production": production,
        "traffic": machine.split(after).as_dict(),
        "routing_version": version,
        **details,
        **(extra or {}),
    }
    evidence: dict[str, Any] = {}
    if "verdict" in transition.evidence:
        evidence["verdict"] = transition.evidence["verdict"]
    if pre_traffic is not None:
        evidence["pre_traffic"] = dict(pre_traffic)
    now = transition.at
    moved: list[str] = []
    if completes:
        metrics = observed_metrics(tx, after, now)
        evidence["observed"] = metrics
    event = tx.ledger.append(transition.actor, transition.audit_action, slot.subject, payload, evidence)
    tx.rollouts.add_transition(
        TransitionRecord(
            after.id, revision, transition.action.value, payload["from"], after.status, after.stage.name,
            machine.split(after).candidate, {**details, **evidence}, now, transition.actor, event.sequence,
        )
    )  # fmt: skip
    if completes:
        assert record is not None
        tx.slots.start_period(
            slot.id, candidate.id, kind="rollout", rollout_id=after.id, at=now, by=transition.actor,
            audit_sequence=event.sequence,
        )  # fmt: skip
        moved = promote_versions(
            tx,
            candidate,
            actor=transition.actor,
            slot=slot,
            rollout_id=after.id,
            gate_report=record.gate_report,
            rollback_plan=record.rollback_plan,
            rollback_to_id=baseline.model_version_id,
        )
        record_metrics(
            tx, candidate, slot=slot, rollout_id=after.id, metrics=metrics, window=(after.started_at, now)
        )
    return RolloutStep(
        slot.name, transition.as_dict(), after.as_dict(), version, event.sequence, pre_traffic, tuple(moved)
    )


def _noted(note: str) -> dict[str, str] | None:
    """The operator's note for the audit payload (nothing when there is none)."""
    return {"note": note.strip()} if note.strip() else None


def _against(involved: RolloutRecord | None, release_id: int) -> str | None:
    if involved is None:
        return None
    return "candidate" if release_id == involved.candidate_id else "baseline"


def _transition_view(t: TransitionRecord) -> dict[str, Any]:
    return {
        "revision": t.revision,
        "action": t.action,
        "from": t.from_status,
        "to": t.to_status,
        "stage": t.stage,
        "traffic": t.traffic,
        "at": t.at.isoformat(),
        "actor": t.actor,
        "audit_sequence": t.audit_sequence,
        "override": t.evidence.get("override"),
        "reason": t.evidence.get("reason"),
        "item": t.evidence.get("item"),
    }

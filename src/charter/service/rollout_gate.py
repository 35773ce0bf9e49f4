"""What a rollout is judged on: its slot's track policy, the traffic observed in a stage (SQL
aggregates, never records), and the checks before the first stage with real traffic.

Before any real traffic reaches a candidate (shadow needs neither):

- its model version passes the four checks of the model promotion gate, with the model version
  of the slot's production release as champion and rollback target (skipped when the candidate
  keeps production's model version: nothing about the model changes);
- each of its prompt versions that production does not already serve has a passing staging
  validation under the `validation` policy in force, and has held the staging pointer (the
  environment before production).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from charter.domain.gate import MetricSummary, Observations, Window, candidate_arm
from charter.domain.rollout import Rollout
from charter.domain.routing import Arm
from charter.domain.semver import Bump
from charter.domain.tracks import TrackPolicy, parse_track_policy, track_policies
from charter.errors import NotFound, ValidationMissing
from charter.service.models import promotion_report
from charter.service.policies import current_policy
from charter.service.prompts import passing_validation
from charter.stats.moments import Moments
from charter.storage.models import ModelVersionRecord
from charter.storage.slots import ReleaseRecord, SlotRecord
from charter.storage.store import Tx


def slot_policy(tx: Tx, slot: SlotRecord, at: datetime | None = None) -> TrackPolicy:
    """The track policy a slot's next rollout pins: its own file, or a named policy of the `tracks`
    section in force (the built-in `default` unless replaced)."""
    if slot.policy_document is not None:
        return parse_track_policy(slot.policy_document)
    policies = track_policies(current_policy(tx, at).section("tracks"))
    found = policies.get(slot.policy_name)
    if found is None:
        raise NotFound(
            f"track policy {slot.policy_name!r} (of slot {slot.name})",
            f"policies in force: {', '.join(sorted(policies))}; add it under `tracks:` with "
            "`charter policy apply FILE`",
        )
    return found


def model_change(production: ModelVersionRecord, candidate: ModelVersionRecord) -> Bump | None:
    """How big the candidate's model change is against production's (a different model: MAJOR)."""
    if production.model_id != candidate.model_id:
        return Bump.MAJOR
    if production.version == candidate.version:
        return None
    low, high = sorted((production.version, candidate.version))
    return low.bump_to(high)


# --- observations ----------------------------------------------------------------------------------


def observe(tx: Tx, rollout: Rollout, candidate_id: int, now: datetime) -> Observations:
    """The current stage's window: per-arm, per-metric, per-day moments of the rollout's records,
    and the incidents reported against the candidate since the stage began."""
    start = rollout.stage_entered_at
    arm = candidate_arm(rollout.stage)
    data = tx.transactions.daily_moments(
        rollout_id=rollout.id,
        arms=(Arm.BASELINE.value, arm.value),
        start=start,
        end=now,
        metrics=list(rollout.policy.metrics),
    )
    return Observations(
        Window(start, now),
        {m: MetricSummary.from_daily(days) for m, days in data[Arm.BASELINE.value].items()},
        {m: MetricSummary.from_daily(days) for m, days in data[arm.value].items()},
        tx.rollouts.incident_counts(candidate_id, start, now),
    )


def observed_metrics(tx: Tx, rollout: Rollout, now: datetime) -> dict[str, Any]:
    """What the whole rollout observed, per arm and metric: count, mean and standard deviation."""
    arms = [a.value for a in Arm]
    data = tx.transactions.daily_moments(
        rollout_id=rollout.id,
        arms=arms,
        start=rollout.started_at,
        end=now,
        metrics=list(rollout.policy.metrics),
    )
    return {
        arm: {m: Moments.combine(days.values()).as_dict() for m, days in sorted(data[arm].items())}
        for arm in arms
        if data[arm]
    }


# --- checks before real traffic --------------------------------------------------------------------


@dataclass(frozen=True)
class PreTrafficReport:
    model: Mapping[str, Any]  # the promotion gate's report, or why it was not needed
    prompts: tuple[Mapping[str, Any], ...]  # per prompt version: validation and staging evidence
    passed: bool

    def summary(self) -> str:
        problems = []
        if not self.model.get("passed", True):
            failed = [f"{c['name']}: {c['detail']}" for c in self.model.get("checks", []) if not c["passed"]]
            problems.append(f"model {self.model.get('candidate')}: " + "; ".join(failed))
        problems.extend(f"prompt {p['ref']}: {p['detail']}" for p in self.prompts if not p["passed"])
        if not problems:
            return "every check before real traffic passed"
        return "the candidate may not receive real traffic: " + " | ".join(problems)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "model": dict(self.model), "prompts": [dict(p) for p in self.prompts]}


def pre_traffic_checks(
    tx: Tx, baseline: ReleaseRecord, candidate: ReleaseRecord, rollback_plan: str
) -> PreTrafficReport:
    """Every check, all evaluated and reported (see the module docstring)."""
    production_version = tx.models.version_by_id(baseline.model_version_id)
    version = tx.models.version_by_id(candidate.model_version_id)
    model: dict[str, Any]
    if version.id == production_version.id:
        model = {
            "candidate": version.ref,
            "passed": True,
            "skipped": True,
            "detail": f"{version.ref} is already production's model version on slot {candidate.slot}",
        }
    else:
        report = promotion_report(
            tx,
            version,
            champion=production_version,
            rollback_plan=rollback_plan,
            rollback_to=production_version,
        )
        model = {**report.as_dict(), "skipped": False}
    policy = current_policy(tx)
    order = policy.section("environments")["order"]
    staging = order[-2]
    prompts = []
    for version_id in candidate.prompt_version_ids:
        if version_id in baseline.prompt_version_ids:
            continue
        record = tx.prompts.version_by_id(version_id)
        problems: list[str] = []
        evidence: dict[str, Any] = {"ref": record.ref, "staging_environment": staging}
        try:
            evidence["validation"] = passing_validation(tx, record, policy.section("validation")).summary()
        except ValidationMissing as missing:
            problems.append(missing.message)
        held = [m for m in tx.prompts.moves(record.prompt_id, staging) if m.to_version == record.version]
        if held:
            evidence["held_staging_since"] = held[0].at.isoformat()
        else:
            problems.append(
                f"{record.ref} never held {staging}; promote it there first "
                f"(`charter prompt promote {record.ref} --to {staging}`)"
            )
        prompts.append(
            {**evidence, "passed": not problems, "detail": "; ".join(problems) or "validated, held staging"}
        )
    passed = bool(model["passed"]) and all(p["passed"] for p in prompts)
    return PreTrafficReport(model, tuple(prompts), passed)

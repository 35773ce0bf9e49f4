"""The stage gate: judge a stage's criteria on observed traffic, with full evidence.

`evaluate_stage(policy, stage, observations, elapsed=…, checked=…)` returns a `StageVerdict`:
PASS, FAIL or INCONCLUSIVE for the stage, one `CriterionResult` per criterion (verdict, reason,
evidence: window, samples per arm, estimates, confidence bound, threshold), and two flags the
rollout acts on — `breach` (roll back at once) and `expired` (the maximum duration passed without
PASS). It reads no clock and no database: the caller passes the observations and how long the
stage has run.

The rules, in order:

1. Safety breach — a P0 incident against the candidate (whatever the criteria say), or a
   `threshold` criterion that FAILs (which needs its minimum samples): FAIL, `breach` set.
2. An `incidents` criterion over its maximum: FAIL (counts only grow; the stage cannot pass).
3. Before the minimum duration: INCONCLUSIVE. Quality criteria (non_inferiority, cost_ratio,
   stable) are computed for information but judged only once the minimum duration has passed.
4. Every criterion PASS: PASS. Any FAIL: FAIL.
5. Otherwise (too little data, a bound straddling the margin, a checklist item open): INCONCLUSIVE,
   which extends the stage up to its maximum duration; at or past the maximum it counts as FAIL
   (`expired` set).

Observations are summary statistics (`charter.stats.Moments` per metric per arm, overall and per
UTC day), so the service computes them with SQL aggregates. During a shadow stage the candidate's
observations are the records with arm `shadow`; otherwise arm `candidate` (`candidate_arm`).
The statistics come from `charter.stats`, imported lazily so this module stays standard-library
only at import time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from charter.domain.criteria import (
    QUALITY_KINDS,
    Checklist,
    CostRatio,
    Criterion,
    Incidents,
    NonInferiority,
    Stable,
    Threshold,
)
from charter.domain.routing import Arm
from charter.domain.tracks import Stage, TrackPolicy, format_duration
from charter.stats.judgement import FAIL, INCONCLUSIVE, PASS, Judgement
from charter.stats.moments import Moments, combine_daily


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


# --- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The observation window: the stage's start to the evaluation time (UTC, aware)."""

    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


@dataclass(frozen=True)
class MetricSummary:
    """One metric in one arm over the window: `total`, and `daily` by UTC day label
    (`"2026-03-01"`), needed only by the `stable` criterion."""

    total: Moments
    daily: Mapping[str, Moments] = field(default_factory=dict)

    @classmethod
    def from_daily(cls, daily: Mapping[str, Moments]) -> MetricSummary:
        """From `GROUP BY day` rows alone: the total is their exact merge."""
        return cls(combine_daily(daily), dict(daily))


@dataclass(frozen=True)
class Observations:
    """What happened in the window. `baseline` / `candidate`: metric name → summary, for the
    records of the production release (arm `baseline`) and of the candidate release (arm
    `candidate`, or `shadow` during a shadow stage). `incidents`: severity (`P0`…`P3`) → number of
    incidents reported against the candidate release in the window."""

    window: Window
    baseline: Mapping[str, MetricSummary] = field(default_factory=dict)
    candidate: Mapping[str, MetricSummary] = field(default_factory=dict)
    incidents: Mapping[str, int] = field(default_factory=dict)


def candidate_arm(stage: Stage) -> Arm:
    """Which transaction records speak for the candidate in `stage`."""
    return Arm.SHADOW if stage.is_shadow else Arm.CANDIDATE


# --- outputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionResult:
    criterion: Criterion
    verdict: Verdict
    reason: str
    evidence: Mapping[str, Any]
    breach: bool = False  # this FAIL is a safety breach

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.criterion.kind.value,
            "label": self.criterion.label,
            "criterion": self.criterion.as_dict(),
            "verdict": self.verdict.value,
            "reason": self.reason,
            "breach": self.breach,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class StageVerdict:
    stage: str
    verdict: Verdict
    reason: str
    results: tuple[CriterionResult, ...]
    window: Window
    elapsed: timedelta
    min_duration: timedelta
    max_duration: timedelta
    breach: str | None = None  # why the candidate must be rolled back at once
    expired: bool = False  # the maximum duration passed without PASS

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def failed(self) -> bool:
        return self.verdict is Verdict.FAIL

    @property
    def min_duration_passed(self) -> bool:
        return self.elapsed >= self.min_duration

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe evidence for the audit event and the CLI/API."""
        return {
            "stage": self.stage,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "breach": self.breach,
            "expired": self.expired,
            "window": self.window.as_dict(),
            "elapsed": format_duration(self.elapsed),
            "elapsed_seconds": int(self.elapsed.total_seconds()),
            "min_duration": format_duration(self.min_duration),
            "max_duration": format_duration(self.max_duration),
            "criteria": [r.as_dict() for r in self.results],
        }


# --- the rules -----------------------------------------------------------------------------------


def evaluate_stage(
    policy: TrackPolicy,
    stage: Stage,
    observations: Observations,
    *,
    elapsed: timedelta,
    checked: Set[str] = frozenset(),
) -> StageVerdict:
    """Judge `stage` of `policy` after it has run for `elapsed` (paused time excluded), with the
    checklist items `checked` so far."""
    if stage.is_production:
        raise ValueError("the production stage has no gate; it ends the rollout")
    mature = elapsed >= stage.min_duration
    results = tuple(_judge(policy, c, observations, checked, mature, stage, elapsed) for c in stage.criteria)

    def verdict(v: Verdict, reason: str, *, breach: str | None = None, expired: bool = False) -> StageVerdict:
        return StageVerdict(
            stage.name,
            v,
            reason,
            results,
            observations.window,
            elapsed,
            stage.min_duration,
            stage.max_duration,
            breach,
            expired,
        )

    p0 = observations.incidents.get("P0", 0)
    breaches = [r for r in results if r.breach]
    if p0 > 0:
        why = f"{p0} P0 incident{'s' if p0 > 1 else ''} reported against the candidate"
        return verdict(Verdict.FAIL, f"safety breach: {why}", breach=why)
    if breaches:
        why = "; ".join(f"{r.criterion.label}: {r.reason}" for r in breaches)
        return verdict(Verdict.FAIL, f"safety breach: {why}", breach=why)
    over = [r for r in results if isinstance(r.criterion, Incidents) and r.verdict is Verdict.FAIL]
    if over:
        return verdict(Verdict.FAIL, "; ".join(f"{r.criterion.label}: {r.reason}" for r in over))
    if not mature:
        to_go = format_duration(stage.min_duration - elapsed)
        return verdict(
            Verdict.INCONCLUSIVE,
            f"the minimum duration {format_duration(stage.min_duration)} has not passed ({to_go} to go)",
        )
    failed = [r for r in results if r.verdict is Verdict.FAIL]
    if failed:
        return verdict(Verdict.FAIL, "; ".join(f"{r.criterion.label}: {r.reason}" for r in failed))
    open_ = [r for r in results if r.verdict is not Verdict.PASS]
    if not open_:
        why = "every criterion passed" if results else "no criteria; the minimum duration has passed"
        return verdict(Verdict.PASS, why)
    pending = "; ".join(f"{r.criterion.label}: {r.reason}" for r in open_)
    if elapsed >= stage.max_duration:
        return verdict(
            Verdict.FAIL,
            f"still inconclusive at the maximum duration {format_duration(stage.max_duration)}: {pending}",
            expired=True,
        )
    return verdict(
        Verdict.INCONCLUSIVE,
        f"extending the stage (up to {format_duration(stage.max_duration)}): {pending}",
    )


def _judge(
    policy: TrackPolicy,
    criterion: Criterion,
    obs: Observations,
    checked: Set[str],
    mature: bool,
    stage: Stage,
    elapsed: timedelta,
) -> CriterionResult:
    judgement = _measure(policy, criterion, obs, checked)
    evidence = {"window": obs.window.as_dict(), **judgement.evidence}
    verdict = Verdict(judgement.decision)
    if criterion.kind in QUALITY_KINDS and not mature:
        to_go = format_duration(stage.min_duration - elapsed)
        evidence["provisional"] = {"verdict": verdict.value, "reason": judgement.reason}
        return CriterionResult(
            criterion,
            Verdict.INCONCLUSIVE,
            f"judged once the minimum duration has passed ({to_go} to go); so far {verdict.value}: "
            + judgement.reason,
            evidence,
        )
    breach = isinstance(criterion, Threshold) and verdict is Verdict.FAIL
    return CriterionResult(criterion, verdict, judgement.reason, evidence, breach)


def _summary(side: Mapping[str, MetricSummary], metric: str) -> MetricSummary:
    return side.get(metric) or MetricSummary(Moments.empty())


def _measure(policy: TrackPolicy, criterion: Criterion, obs: Observations, checked: Set[str]) -> Judgement:
    """The criterion's judgement on the observations alone (timing rules are applied by the caller)."""
    match criterion:
        case Threshold():
            from charter.stats.threshold import threshold_test

            return threshold_test(
                _summary(obs.candidate, criterion.metric).total,
                minimum=criterion.min,
                maximum=criterion.max,
                min_samples=criterion.min_samples,
                alpha=criterion.alpha,
            )
        case NonInferiority():
            from charter.stats.noninferiority import noninferiority_test

            return noninferiority_test(
                _summary(obs.candidate, criterion.metric).total,
                _summary(obs.baseline, criterion.metric).total,
                margin=criterion.margin,
                alpha=criterion.alpha,
                min_samples=criterion.min_samples,
                higher_is_better=policy.metrics[criterion.metric].higher_is_better,
            )
        case CostRatio():
            from charter.stats.noninferiority import cost_ratio_test

            return cost_ratio_test(
                _summary(obs.candidate, criterion.metric).total,
                _summary(obs.baseline, criterion.metric).total,
                max_ratio=criterion.max,
                alpha=criterion.alpha,
                min_samples=criterion.min_samples,
            )
        case Stable():
            from charter.stats.stability import stability_test

            metrics = criterion.metrics or tuple(policy.metrics)
            return stability_test(
                {m: _summary(obs.baseline, m).daily for m in metrics},
                {m: _summary(obs.candidate, m).daily for m in metrics},
                higher_is_better={m: policy.metrics[m].higher_is_better for m in metrics},
                tolerance=criterion.tolerance,
                min_samples=criterion.min_samples,
                two_sided=criterion.two_sided,
            )
        case Incidents():
            return _incidents(criterion, obs)
        case Checklist():
            return _checklist(criterion, checked)


def _incidents(criterion: Incidents, obs: Observations) -> Judgement:
    counts = {s: int(obs.incidents.get(s, 0)) for s in criterion.severity}
    total = sum(counts.values())
    evidence = {"counts": counts, "threshold": {"max": criterion.max}}
    kinds = "/".join(criterion.severity)
    if total > criterion.max:
        return Judgement(FAIL, f"{total} {kinds} incident(s), at most {criterion.max} allowed", evidence)
    return Judgement(PASS, f"{total} {kinds} incident(s) so far, at most {criterion.max} allowed", evidence)


def _checklist(criterion: Checklist, checked: Set[str]) -> Judgement:
    missing = [i for i in criterion.items if i not in checked]
    evidence = {"checked": [i for i in criterion.items if i in checked], "missing": missing}
    if missing:
        return Judgement(
            INCONCLUSIVE,
            "not yet checked: " + ", ".join(missing) + " (charter rollout check SLOT --item NAME)",
            evidence,
        )
    return Judgement(PASS, "every item checked", evidence)

"""The promotion gate: four checks over plain values, all evaluated, all reported.

(a) `held_out_evaluation` — the candidate has an evaluation on a dataset version whose role is
    `eval` or `holdout`, and that version's exact row overlap with every training dataset of the
    candidate is zero, and its near-duplicate ratio (MinHash/LSH on text columns, measured when the
    evaluation was recorded) is within the `contamination` policy's limit of that time — unless a
    reviewer other than the evaluation's author waived it. Evaluations recorded before
    near-duplicates were measured say "not measured" rather than pretending.
(b) `champion_comparison` — on that same dataset version, the candidate matches or beats the
    champion (the current `production` holder) on every primary metric of the model. The
    champion must have a result there, else the check fails and says what to record. With no
    champion the check passes as "no champion".
(c) `sign_off` — a reviewer who is not the version's author signed it off; when the model has
    designated reviewers, one of them.
(d) `rollback_plan` — rollback plan text, and a rollback target that exists and is not the
    candidate; the target may be omitted only when there is no champion.

The gate never stops at the first failure: `evaluate_gate` always returns all four checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.domain.modelspec import METRIC_NAME
from charter.errors import InvalidInput

HELD_OUT_ROLES = frozenset({"eval", "holdout"})
CHECKS = ("held_out_evaluation", "champion_comparison", "sign_off", "rollback_plan")

NEAR_DUPLICATES_NOT_MEASURED = {
    "measured": False,
    "note": "near-duplicate overlap (MinHash/LSH) is not measured yet; only exact row overlap is checked",
}


@dataclass(frozen=True)
class EvaluationFacts:
    id: int
    model: str  # "name@1.2.0"
    dataset: str  # "name@4"
    dataset_role: str
    metrics: Mapping[str, float]
    overlap: Mapping[str, Mapping[str, Any]]  # training dataset ref → exact overlap measurement
    created_at: str
    created_by: str
    waiver: Mapping[str, Any] | None = None  # a reviewer's waiver of near-duplicate overlap

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "dataset": self.dataset,
            "dataset_role": self.dataset_role,
            "metrics": dict(self.metrics),
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class SignoffFacts:
    by: str
    at: str
    note: str = ""


@dataclass(frozen=True)
class GateInput:
    candidate: str  # "name@1.3.0"
    author: str
    training_datasets: tuple[str, ...]
    evaluation: EvaluationFacts | None
    missing_evaluation: str  # what to do when `evaluation` is None
    primary_metrics: Mapping[str, str]  # metric → "higher" | "lower"
    champion: str | None
    champion_evaluation: EvaluationFacts | None  # the champion's result on the same dataset version
    signoffs: tuple[SignoffFacts, ...]
    designated_reviewers: frozenset[str]
    rollback_plan: str
    rollback_to: str | None
    rollback_to_exists: bool


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "detail": self.detail,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class GateReport:
    candidate: str
    champion: str | None
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def summary(self) -> str:
        if self.passed:
            return f"{self.candidate} passes all {len(self.checks)} promotion checks"
        reasons = "; ".join(f"{check.name}: {check.detail}" for check in self.failed)
        return (
            f"{self.candidate} was not promoted: {len(self.failed)} of {len(self.checks)} promotion "
            f"checks failed — {reasons}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "champion": self.champion,
            "passed": self.passed,
            "checks": [check.as_dict() for check in self.checks],
        }


def check_metric_values(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metric values of an evaluation: a non-empty mapping of metric name → finite number."""
    if not isinstance(metrics, Mapping) or not metrics:
        raise InvalidInput("an evaluation needs at least one metric, such as accuracy=0.91")
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not METRIC_NAME.match(name):
            raise InvalidInput(f"{name!r} is not a metric name; use letters, digits and _ . : / -")
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise InvalidInput(f"metric {name} = {value!r} is not a number; expected, say, {name}=0.91")
        if math.isinf(value):
            raise InvalidInput(f"metric {name} is infinite; record a finite number")
        out[name] = float(value)
    return dict(sorted(out.items()))


def evaluate_gate(facts: GateInput) -> GateReport:
    """All four checks, in order, whatever each one finds."""
    return GateReport(
        facts.candidate,
        facts.champion,
        (held_out_evaluation(facts), champion_comparison(facts), sign_off(facts), rollback_plan(facts)),
    )


def held_out_evaluation(facts: GateInput) -> Check:
    name = CHECKS[0]
    evaluation = facts.evaluation
    if evaluation is None:
        return Check(name, False, facts.missing_evaluation, {"near_duplicates": NEAR_DUPLICATES_NOT_MEASURED})
    evidence: dict[str, Any] = {
        "evaluation": evaluation.as_dict(),
        "training_datasets": list(facts.training_datasets),
        "exact_overlap": {ref: dict(m) for ref, m in evaluation.overlap.items()},
        "near_duplicates": near_duplicate_evidence(evaluation),
    }
    problems = []
    if evaluation.dataset_role not in HELD_OUT_ROLES:
        problems.append(
            f"{evaluation.dataset} has role {evaluation.dataset_role!r}, not eval or holdout; evaluate "
            "on a held-out, production-representative dataset version"
        )
    unmeasured = [ref for ref in facts.training_datasets if ref not in evaluation.overlap]
    if unmeasured:
        problems.append(
            f"the overlap with {', '.join(unmeasured)} was not measured; record the evaluation again"
        )
    contaminated = [
        f"{ref} ({int(m.get('overlapping', 0))} rows)"
        for ref, m in sorted(evaluation.overlap.items())
        if ref in facts.training_datasets and int(m.get("overlapping", 0)) != 0
    ]
    if contaminated:
        problems.append(
            f"{evaluation.dataset} shares rows with training data: {', '.join(contaminated)}; evaluate "
            "on a dataset version with no training rows"
        )
    near = near_duplicate_excess(evaluation, facts.training_datasets)
    if near and evaluation.waiver is None:
        problems.append(
            f"{evaluation.dataset} has near-duplicates of training data above the contamination policy: "
            f"{', '.join(near)}; evaluate on cleaner data, or have a reviewer other than "
            f"{evaluation.created_by} waive it with `charter model waive {evaluation.model} --reason TEXT`"
        )
    if problems:
        return Check(name, False, "; ".join(problems), evidence)
    against = (
        f"zero exact row overlap with {', '.join(facts.training_datasets)}"
        if facts.training_datasets
        else "the version declares no training datasets"
    )
    if near and evaluation.waiver is not None:
        against += f"; near-duplicates {', '.join(near)} waived by {evaluation.waiver.get('by')}"
    return Check(
        name, True, f"evaluated on {evaluation.dataset} ({evaluation.dataset_role}); {against}", evidence
    )


def near_duplicate_evidence(evaluation: EvaluationFacts) -> dict[str, Any]:
    """Near-duplicate measurements per training dataset, and the waiver if any; 'not measured' for
    evaluations recorded before near-duplicates were measured."""
    measured = {
        ref: dict(m["near_duplicates"])
        for ref, m in evaluation.overlap.items()
        if isinstance(m.get("near_duplicates"), Mapping)
    }
    if not measured:
        return dict(NEAR_DUPLICATES_NOT_MEASURED)
    return {"measured": True, "per_dataset": measured, "waiver": evaluation.waiver}


def near_duplicate_excess(evaluation: EvaluationFacts, training: Sequence[str]) -> list[str]:
    """Training datasets whose near-duplicate ratio exceeds the limit in force at evaluation time."""
    found = []
    for ref, m in sorted(evaluation.overlap.items()):
        near = m.get("near_duplicates")
        if ref not in training or not isinstance(near, Mapping) or not near.get("measured"):
            continue
        if float(near["ratio"]) > float(near["max_ratio"]):
            found.append(f"{ref} ({float(near['ratio']):.2%} > {float(near['max_ratio']):.2%})")
    return found


def champion_comparison(facts: GateInput) -> Check:
    name = CHECKS[1]
    if facts.champion is None:
        return Check(name, True, "no champion: nothing is in production yet", {"champion": None})
    evidence: dict[str, Any] = {"champion": facts.champion, "primary_metrics": dict(facts.primary_metrics)}
    if not facts.primary_metrics:
        return Check(
            name,
            False,
            f"the model declares no primary metrics to compare {facts.candidate} with {facts.champion} "
            "on; an admin can declare them with `charter model metrics NAME --set METRIC=higher|lower`",
            evidence,
        )
    candidate = facts.evaluation
    if candidate is None:
        return Check(name, False, "no held-out evaluation of the candidate to compare", evidence)
    evidence["dataset"] = candidate.dataset
    champion = facts.champion_evaluation
    if champion is None:
        metrics = " ".join(f"--metric {m}=…" for m in facts.primary_metrics)
        return Check(
            name,
            False,
            f"the champion {facts.champion} has no result on {candidate.dataset}; record one with "
            f"`charter model eval {facts.champion} --dataset {candidate.dataset} {metrics}`",
            evidence,
        )
    evidence["champion_evaluation"] = champion.id
    evidence["candidate_evaluation"] = candidate.id
    rows, problems = [], []
    for metric, direction in facts.primary_metrics.items():
        ours, theirs = candidate.metrics.get(metric), champion.metrics.get(metric)
        ok = (
            ours is not None
            and theirs is not None
            and (ours >= theirs if direction == "higher" else ours <= theirs)
        )
        rows.append(
            {"metric": metric, "direction": direction, "candidate": ours, "champion": theirs, "ok": ok}
        )
        if ours is None:
            problems.append(f"{metric} is missing from the candidate's evaluation {candidate.id}")
        elif theirs is None:
            problems.append(f"{metric} is missing from the champion's evaluation {champion.id}")
        elif not ok:
            better = "higher" if direction == "higher" else "lower"
            problems.append(f"{metric} {ours:g} is worse than the champion's {theirs:g} ({better} is better)")
    evidence["metrics"] = rows
    if problems:
        return Check(name, False, "; ".join(problems), evidence)
    return Check(
        name,
        True,
        f"matches or beats {facts.champion} on {', '.join(facts.primary_metrics)} on {candidate.dataset}",
        evidence,
    )


def sign_off(facts: GateInput) -> Check:
    name = CHECKS[2]
    designated = sorted(facts.designated_reviewers)
    evidence: dict[str, Any] = {
        "author": facts.author,
        "designated_reviewers": designated,
        "signoffs": [{"by": s.by, "at": s.at, "note": s.note} for s in facts.signoffs],
    }
    valid = [
        s
        for s in facts.signoffs
        if s.by != facts.author and (not designated or s.by in facts.designated_reviewers)
    ]
    if valid:
        first = valid[0]
        return Check(name, True, f"signed off by {first.by} at {first.at}", evidence)
    who = f"one of the designated reviewers ({', '.join(designated)})" if designated else "a reviewer"
    return Check(
        name,
        False,
        f"{facts.candidate} needs a sign-off by {who} other than its author {facts.author}: "
        f"`charter model signoff {facts.candidate}`",
        evidence,
    )


def rollback_plan(facts: GateInput) -> Check:
    name = CHECKS[3]
    plan = facts.rollback_plan.strip()
    evidence: dict[str, Any] = {"plan": plan, "rollback_to": facts.rollback_to, "champion": facts.champion}
    problems = []
    if not plan:
        problems.append("the rollback plan is empty; say how to go back (--rollback-plan TEXT)")
    if facts.rollback_to is None:
        if facts.champion is not None:
            problems.append(
                f"name a rollback target that exists, such as the current production version "
                f"(--rollback-to {facts.champion})"
            )
    elif facts.rollback_to == facts.candidate:
        problems.append("the rollback target is the candidate itself; name the version to go back to")
    elif not facts.rollback_to_exists:
        problems.append(f"the rollback target {facts.rollback_to} does not exist")
    if problems:
        return Check(name, False, "; ".join(problems), evidence)
    target = facts.rollback_to or "none needed (no champion)"
    return Check(name, True, f"plan given; rollback target: {target}", evidence)


def previous_holder(moves: Sequence[tuple[str, str | None]]) -> str | None:
    """The version a rollback returns to, from an alias's moves in order as (kind, to_version).

    Each promotion pushes its version; each rollback pops the holder it replaces. So promoting
    1.0 → 1.1 → 1.2 then rolling back twice goes to 1.1, then 1.0; a third rollback has nowhere
    to go.
    """
    stack: list[str] = []
    for kind, to in moves:
        if kind == "rollback":
            if stack:
                stack.pop()
            if to is not None and (not stack or stack[-1] != to):
                stack.append(to)
        elif to is not None:
            stack.append(to)
    return stack[-2] if len(stack) >= 2 else None

"""The promotion gate over plain values: four checks, always all of them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from charter.domain.promotion import (
    CHECKS,
    EvaluationFacts,
    GateInput,
    SignoffFacts,
    check_metric_values,
    evaluate_gate,
    previous_holder,
)
from charter.errors import InvalidInput


def evaluation(
    model: str = "m@1.1.0", role: str = "holdout", overlap: int = 0, **metrics: float
) -> EvaluationFacts:
    return EvaluationFacts(
        id=7 if model == "m@1.1.0" else 3,
        model=model,
        dataset="golden@2",
        dataset_role=role,
        metrics=metrics or {"accuracy": 0.9, "latency_ms": 120.0},
        overlap={
            "train@4": {"overlapping": overlap, "a_total": 100, "ratio": overlap / 100, "method": "rows"}
        },
        created_at="2026-03-02T09:00:00+00:00",
        created_by="alice",
    )


def facts(**changes: Any) -> GateInput:
    good = GateInput(
        candidate="m@1.1.0",
        author="alice",
        training_datasets=("train@4",),
        evaluation=evaluation(),
        missing_evaluation="record one",
        primary_metrics={"accuracy": "higher", "latency_ms": "lower"},
        champion="m@1.0.0",
        champion_evaluation=evaluation("m@1.0.0", accuracy=0.85, latency_ms=150.0),
        signoffs=(SignoffFacts("bob", "2026-03-02T10:00:00+00:00", "looks good"),),
        designated_reviewers=frozenset(),
        rollback_plan="move production back to 1.0.0",
        rollback_to="m@1.0.0",
        rollback_to_exists=True,
    )
    return replace(good, **changes)


def verdicts(report: Any) -> dict[str, bool]:
    return {c.name: c.passed for c in report.checks}


def test_a_good_candidate_passes_every_check_with_evidence() -> None:
    report = evaluate_gate(facts())
    assert report.passed and [c.name for c in report.checks] == list(CHECKS)
    data = report.as_dict()
    assert data["passed"] and data["champion"] == "m@1.0.0"
    held_out = data["checks"][0]["evidence"]
    assert held_out["exact_overlap"]["train@4"]["overlapping"] == 0
    assert held_out["near_duplicates"]["measured"] is False  # reported, not faked
    assert data["checks"][1]["evidence"]["metrics"][0] == {
        "metric": "accuracy",
        "direction": "higher",
        "candidate": 0.9,
        "champion": 0.85,
        "ok": True,
    }


def test_every_check_is_reported_even_when_the_first_fails() -> None:
    report = evaluate_gate(
        facts(
            evaluation=None,
            missing_evaluation="no held-out evaluation; record one",
            signoffs=(),
            rollback_plan=" ",
            rollback_to=None,
        )
    )
    assert verdicts(report) == dict.fromkeys(CHECKS, False)
    assert "record one" in report.checks[0].detail
    assert "no held-out evaluation of the candidate" in report.checks[1].detail
    assert "needs a sign-off by a reviewer other than its author alice" in report.checks[2].detail
    assert (
        "rollback plan is empty" in report.checks[3].detail
        and "--rollback-to m@1.0.0" in report.checks[3].detail
    )
    assert "4 of 4 promotion checks failed" in report.summary()


def test_with_no_champion_the_comparison_passes_and_the_target_may_be_omitted() -> None:
    report = evaluate_gate(
        facts(champion=None, champion_evaluation=None, rollback_to=None, rollback_to_exists=False)
    )
    assert report.passed
    assert report.checks[1].detail == "no champion: nothing is in production yet"


def test_training_rows_in_the_eval_set_fail_the_held_out_check() -> None:
    report = evaluate_gate(facts(evaluation=evaluation(overlap=3)))
    assert verdicts(report)["held_out_evaluation"] is False
    assert "shares rows with training data: train@4 (3 rows)" in report.checks[0].detail


def test_the_eval_set_must_be_held_out() -> None:
    report = evaluate_gate(facts(evaluation=evaluation(role="train")))
    assert "has role 'train', not eval or holdout" in report.checks[0].detail


def test_an_unmeasured_training_dataset_fails_the_held_out_check() -> None:
    report = evaluate_gate(facts(training_datasets=("train@4", "extra@1")))
    assert "overlap with extra@1 was not measured" in report.checks[0].detail


def test_a_champion_without_a_result_on_the_eval_set_fails_and_says_what_to_record() -> None:
    check = evaluate_gate(facts(champion_evaluation=None)).checks[1]
    assert not check.passed
    assert (
        "`charter model eval m@1.0.0 --dataset golden@2 --metric accuracy=… --metric latency_ms=…`"
        in check.detail
    )


def test_the_candidate_must_match_or_beat_the_champion_on_every_primary_metric() -> None:
    tie = facts(champion_evaluation=evaluation("m@1.0.0", accuracy=0.9, latency_ms=120.0))
    assert evaluate_gate(tie).passed
    slower = evaluate_gate(facts(champion_evaluation=evaluation("m@1.0.0", accuracy=0.8, latency_ms=100.0)))
    assert "latency_ms 120 is worse than the champion's 100 (lower is better)" in slower.checks[1].detail
    missing = evaluate_gate(facts(evaluation=evaluation(accuracy=0.95)))
    assert "latency_ms is missing from the candidate's evaluation 7" in missing.checks[1].detail
    undeclared = evaluate_gate(facts(primary_metrics={}))
    assert "declares no primary metrics" in undeclared.checks[1].detail


def test_only_a_designated_reviewer_other_than_the_author_counts() -> None:
    own = evaluate_gate(facts(signoffs=(SignoffFacts("alice", "t"),)))
    assert not own.checks[2].passed
    outsider = evaluate_gate(facts(designated_reviewers=frozenset({"carol"})))
    assert not outsider.checks[2].passed and "designated reviewers (carol)" in outsider.checks[2].detail
    designated = evaluate_gate(facts(designated_reviewers=frozenset({"bob"})))
    assert designated.checks[2].passed


def test_the_rollback_target_must_exist_and_not_be_the_candidate() -> None:
    gone = evaluate_gate(facts(rollback_to="m@0.9.0", rollback_to_exists=False))
    assert "m@0.9.0 does not exist" in gone.checks[3].detail
    itself = evaluate_gate(facts(rollback_to="m@1.1.0"))
    assert "is the candidate itself" in itself.checks[3].detail


@pytest.mark.parametrize(
    ("moves", "expected"),
    [
        ([], None),
        ([("promote", "1.0.0")], None),
        ([("promote", "1.0.0"), ("promote", "1.1.0")], "1.0.0"),
        ([("promote", "1.0.0"), ("promote", "1.1.0"), ("promote", "1.2.0"), ("rollback", "1.1.0")], "1.0.0"),
        ([("promote", "1.0.0"), ("promote", "1.1.0"), ("rollback", "1.0.0")], None),
        ([("promote", "1.0.0"), ("promote", "1.1.0"), ("rollback", "1.0.0"), ("promote", "1.2.0")], "1.0.0"),
    ],
)
def test_rollback_returns_to_the_holder_before_the_current_one(
    moves: list[tuple[str, str]], expected: str | None
) -> None:
    assert previous_holder(moves) == expected


def test_metric_values_must_be_finite_numbers() -> None:
    assert check_metric_values({"b": 1, "a": 0.5}) == {"a": 0.5, "b": 1.0}
    for bad in (
        {},
        {"acc": "high"},
        {"acc": float("nan")},
        {"acc": float("inf")},
        {"a b": 1.0},
        {"acc": True},
    ):
        with pytest.raises(InvalidInput):
            check_metric_values(bad)

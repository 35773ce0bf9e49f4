"""The gate's statistics on simulated traffic (seeded numpy RNG), and the stage rules built on them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.domain.canonical import canonical_json
from charter.domain.gate import (
    MetricSummary,
    Observations,
    Verdict,
    Window,
    candidate_arm,
    evaluate_stage,
)
from charter.domain.routing import Arm
from charter.domain.tracks import TrackPolicy, default_track_policy, parse_track_policy
from charter.stats import Moments
from charter.stats.noninferiority import cost_ratio_test, fieller_interval, noninferiority_test
from charter.stats.stability import stability_test
from charter.stats.threshold import threshold_test

T0 = datetime(2026, 3, 1, tzinfo=UTC)
POLICY = default_track_policy()
SHADOW, MICRO, SMALL, HALF, _ = POLICY.stages


def moments(x: np.ndarray) -> Moments:
    """What SQL would return, computed from raw values."""
    return (
        Moments(int(x.size), float(x.mean()), float(((x - x.mean()) ** 2).sum()))
        if x.size
        else Moments.empty()
    )


def quality(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    """A per-request quality score around `mean` (sd 0.15, so the coefficient of variation ≈ 0.19)."""
    return rng.normal(mean, 0.15, n)


def cost(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    """Per-request cost: log-normal, skewed like token counts."""
    sigma = 0.6
    return rng.lognormal(math.log(mean) - sigma**2 / 2, sigma, n)


def observe(
    *,
    days: float,
    baseline: dict[str, np.ndarray] | None = None,
    candidate: dict[str, np.ndarray] | None = None,
    incidents: dict[str, int] | None = None,
) -> Observations:
    window = Window(T0, T0 + timedelta(days=days))
    return Observations(
        window,
        {m: MetricSummary(moments(x)) for m, x in (baseline or {}).items()},
        {m: MetricSummary(moments(x)) for m, x in (candidate or {}).items()},
        incidents or {},
    )


# --- summary statistics ----------------------------------------------------------------------------

values = st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), max_size=40)


@settings(deadline=None)  # no test here may depend on timing
@given(values, values)
def test_moments_merge_like_the_union_of_their_observations(a: list[float], b: list[float]) -> None:
    merged = Moments.from_values(a).merge(Moments.from_values(b))
    direct = Moments.from_values(a + b)
    assert merged.count == direct.count
    assert math.isclose(merged.mean, direct.mean, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(merged.m2, direct.m2, rel_tol=1e-7, abs_tol=1e-3)


def test_moments_from_sql_aggregates_agree() -> None:
    x = np.random.default_rng(1).normal(0.8, 0.15, 10_000)
    reference = moments(x)
    from_sums = Moments.from_sums(x.size, float(x.sum()), float((x * x).sum()))
    shifted = Moments.from_sums(x.size, float((x - 0.8).sum()), float(((x - 0.8) ** 2).sum()), shift=0.8)
    from_var = Moments.from_mean_variance(x.size, float(x.mean()), float(x.var(ddof=1)))
    for m in (from_sums, shifted, from_var):
        assert m.count == reference.count
        assert math.isclose(m.mean, reference.mean, rel_tol=1e-12)
        assert math.isclose(m.variance, reference.variance, rel_tol=1e-9)
    assert Moments.from_sums(0, None, None) == Moments.empty()
    assert Moments.from_mean_variance(1, 0.5, None) == Moments(1, 0.5, 0.0)
    with pytest.raises(ValueError):
        Moments(3, 0.5, -1.0)


# --- non-inferiority ----------------------------------------------------------------------------


def test_a_candidate_3_percent_worse_is_caught_at_the_2_percent_margin() -> None:
    rng = np.random.default_rng(20260301)
    base, cand = quality(rng, 20_000, 0.80), quality(rng, 20_000, 0.80 * 0.97)
    result = noninferiority_test(
        moments(cand), moments(base), margin=0.02, alpha=0.05, min_samples=400, higher_is_better=True
    )
    assert result.decision == "fail"
    bound = result.evidence["confidence_bound"]
    assert bound["side"] == "lower" and bound["other_side"] < 0.98
    assert result.evidence["samples"] == {"baseline": 20_000, "candidate": 20_000}
    assert result.evidence["threshold"] == {"margin": 0.02, "ratio": 0.98}


def test_an_equal_candidate_passes() -> None:
    rng = np.random.default_rng(7)
    base, cand = quality(rng, 5_000, 0.80), quality(rng, 5_000, 0.80)
    result = noninferiority_test(
        moments(cand), moments(base), margin=0.02, alpha=0.05, min_samples=400, higher_is_better=True
    )
    assert result.decision == "pass"
    assert result.evidence["confidence_bound"]["ratio"] > 0.98
    assert result.evidence["test"]["p_value"] < 0.05


def test_too_few_samples_is_inconclusive() -> None:
    rng = np.random.default_rng(3)
    base, cand = quality(rng, 5_000, 0.80), quality(rng, 399, 0.80)
    result = noninferiority_test(
        moments(cand), moments(base), margin=0.02, alpha=0.05, min_samples=400, higher_is_better=True
    )
    assert result.decision == "inconclusive"
    assert "at least 400" in result.reason


def test_a_3_percent_worse_candidate_never_passes_even_when_the_data_cannot_tell_yet() -> None:
    rng = np.random.default_rng(11)
    base, cand = quality(rng, 1_000, 0.80), quality(rng, 1_000, 0.80 * 0.97)
    result = noninferiority_test(
        moments(cand), moments(base), margin=0.02, alpha=0.05, min_samples=400, higher_is_better=True
    )
    assert result.decision == "inconclusive"
    assert "straddle" in result.reason


def test_lower_is_better_metrics_are_judged_the_other_way() -> None:
    rng = np.random.default_rng(5)
    base = cost(rng, 30_000, 1.0)
    worse = noninferiority_test(
        moments(cost(rng, 30_000, 1.06)),
        moments(base),
        margin=0.02,
        alpha=0.05,
        min_samples=100,
        higher_is_better=False,
    )
    same = noninferiority_test(
        moments(cost(rng, 30_000, 1.0)),
        moments(base),
        margin=0.02,
        alpha=0.05,
        min_samples=100,
        higher_is_better=False,
    )
    assert (worse.decision, same.decision) == ("fail", "pass")
    assert same.evidence["confidence_bound"]["side"] == "upper"


def test_at_exactly_the_margin_the_test_passes_about_alpha_of_the_time() -> None:
    rng = np.random.default_rng(42)
    runs, passes = 400, 0
    for _ in range(runs):
        base, cand = quality(rng, 3_000, 0.80), quality(rng, 3_000, 0.80 * 0.98)
        result = noninferiority_test(
            moments(cand), moments(base), margin=0.02, alpha=0.05, min_samples=400, higher_is_better=True
        )
        passes += result.decision == "pass"
    assert passes / runs < 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


def test_fieller_bounds_match_the_delta_method_when_the_baseline_is_precise() -> None:
    rng = np.random.default_rng(9)
    c, b = moments(cost(rng, 200_000, 1.05)), moments(cost(rng, 200_000, 1.0))
    interval = fieller_interval(c, b, alpha=0.05, reference=1.1)
    ratio = c.mean / b.mean
    se = ratio * math.sqrt(c.variance / c.count / c.mean**2 + b.variance / b.count / b.mean**2)
    assert interval.upper is not None and interval.lower is not None
    assert math.isclose(interval.upper, ratio + 1.6449 * se, rel_tol=1e-3)
    assert math.isclose(interval.lower, ratio - 1.6449 * se, rel_tol=1e-3)


# --- cost ratio -----------------------------------------------------------------------------------


def test_cost_ratio_is_judged_on_the_upper_bound() -> None:
    rng = np.random.default_rng(17)
    base = moments(cost(rng, 5_000, 0.010))
    same = cost_ratio_test(
        moments(cost(rng, 5_000, 0.010)), base, max_ratio=1.10, alpha=0.05, min_samples=100
    )
    pricey = cost_ratio_test(
        moments(cost(rng, 5_000, 0.0125)), base, max_ratio=1.10, alpha=0.05, min_samples=100
    )
    few = cost_ratio_test(moments(cost(rng, 50, 0.010)), base, max_ratio=1.10, alpha=0.05, min_samples=100)
    assert same.decision == "pass" and same.evidence["confidence_bound"]["ratio"] <= 1.10
    assert pricey.decision == "fail" and pricey.evidence["confidence_bound"]["other_side"] > 1.10
    assert few.decision == "inconclusive"


def test_the_cost_upper_bound_covers_the_true_ratio_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(23)
    runs, covered = 400, 0
    for _ in range(runs):
        interval = fieller_interval(
            moments(cost(rng, 500, 1.05)), moments(cost(rng, 500, 1.0)), alpha=0.05, reference=1.1
        )
        assert interval.upper is not None
        covered += interval.upper >= 1.05
    assert abs(covered / runs - 0.95) < 3 * math.sqrt(0.05 * 0.95 / runs)


# --- stable and threshold -------------------------------------------------------------------------


def _days(rng: np.random.Generator, means: list[float], n: int = 2_000) -> dict[str, Moments]:
    return {f"2026-03-0{i + 1}": moments(quality(rng, n, m)) for i, m in enumerate(means)}


def test_stable_when_every_daily_mean_stays_within_tolerance() -> None:
    rng = np.random.default_rng(29)
    base = {"quality": _days(rng, [0.8, 0.8, 0.8])}
    ok = stability_test(
        base,
        {"quality": _days(rng, [0.8, 0.795, 0.8])},
        higher_is_better={"quality": True},
        tolerance=0.02,
        min_samples=100,
    )
    dip = stability_test(
        base,
        {"quality": _days(rng, [0.8, 0.75, 0.8])},
        higher_is_better={"quality": True},
        tolerance=0.02,
        min_samples=100,
    )
    assert ok.decision == "pass"
    assert dip.decision == "fail" and "quality on 2026-03-02" in dip.reason


def test_stability_is_one_sided_unless_asked_and_skips_thin_days() -> None:
    rng = np.random.default_rng(31)
    base = {"quality": _days(rng, [0.8, 0.8])}
    better = {"quality": _days(rng, [0.9, 0.9])}
    assert (
        stability_test(
            base, better, higher_is_better={"quality": True}, tolerance=0.02, min_samples=100
        ).decision
        == "pass"
    )
    assert (
        stability_test(
            base, better, higher_is_better={"quality": True}, tolerance=0.02, min_samples=100, two_sided=True
        ).decision
        == "fail"
    )
    thin = {"quality": _days(rng, [0.8, 0.8], n=20)}
    assert (
        stability_test(
            base, thin, higher_is_better={"quality": True}, tolerance=0.02, min_samples=100
        ).decision
        == "inconclusive"
    )


def test_threshold_on_the_candidate() -> None:
    rng = np.random.default_rng(37)
    good = moments(rng.binomial(1, 0.997, 600).astype(float))
    bad = moments(rng.binomial(1, 0.95, 600).astype(float))
    few = moments(rng.binomial(1, 0.95, 100).astype(float))
    assert threshold_test(good, minimum=0.99, min_samples=500).decision == "pass"
    assert threshold_test(bad, minimum=0.99, min_samples=500).decision == "fail"
    assert threshold_test(few, minimum=0.99, min_samples=500).decision == "inconclusive"
    # with alpha, the decision waits for a confident bound
    assert threshold_test(bad, minimum=0.99, min_samples=500, alpha=0.05).decision == "fail"
    edge = moments(rng.binomial(1, 0.99, 600).astype(float))
    assert threshold_test(edge, minimum=0.99, min_samples=500, alpha=0.05).decision == "inconclusive"
    assert threshold_test(Moments(600, 0.2, 1.0), maximum=0.5, min_samples=500).decision == "pass"


# --- the stage gate -----------------------------------------------------------------------------------


def test_the_shadow_candidate_is_the_shadow_arm() -> None:
    assert candidate_arm(SHADOW) is Arm.SHADOW and candidate_arm(MICRO) is Arm.CANDIDATE


def test_a_canary_3_percent_worse_fails_the_stage_once_the_minimum_duration_has_passed() -> None:
    rng = np.random.default_rng(41)
    obs = observe(
        days=2,
        baseline={"quality": quality(rng, 30_000, 0.80)},
        candidate={"quality": quality(rng, 30_000, 0.80 * 0.97)},
    )
    early = evaluate_stage(POLICY, MICRO, obs, elapsed=timedelta(days=1))
    assert early.verdict is Verdict.INCONCLUSIVE and "minimum duration" in early.reason
    assert early.results[0].evidence["provisional"]["verdict"] == "fail"
    judged = evaluate_stage(POLICY, MICRO, obs, elapsed=timedelta(days=2))
    assert judged.verdict is Verdict.FAIL and judged.breach is None and not judged.expired
    assert [r.verdict for r in judged.results] == [Verdict.FAIL, Verdict.PASS]


def test_an_equal_canary_passes_with_full_evidence() -> None:
    rng = np.random.default_rng(43)
    obs = observe(
        days=2,
        baseline={"quality": quality(rng, 8_000, 0.80)},
        candidate={"quality": quality(rng, 8_000, 0.80)},
    )
    verdict = evaluate_stage(POLICY, MICRO, obs, elapsed=timedelta(days=2, hours=1))
    assert verdict.passed
    evidence = verdict.as_dict()
    canonical_json(evidence)  # fit for the audit ledger: finite numbers, plain JSON
    ni = evidence["criteria"][0]["evidence"]
    assert set(ni) >= {"window", "samples", "estimates", "confidence_bound", "threshold", "alpha", "test"}
    assert ni["window"] == {"from": T0.isoformat(), "to": (T0 + timedelta(days=2)).isoformat()}


def test_too_little_data_extends_the_stage_and_counts_as_fail_at_the_maximum_duration() -> None:
    rng = np.random.default_rng(47)
    obs = observe(
        days=3,
        baseline={"quality": quality(rng, 5_000, 0.80)},
        candidate={"quality": quality(rng, 150, 0.80)},
    )
    during = evaluate_stage(POLICY, MICRO, obs, elapsed=timedelta(days=2, hours=12))
    assert during.verdict is Verdict.INCONCLUSIVE and "extending the stage" in during.reason
    at_max = evaluate_stage(POLICY, MICRO, obs, elapsed=timedelta(days=3))
    assert at_max.verdict is Verdict.FAIL and at_max.expired and at_max.breach is None
    assert "still inconclusive at the maximum duration 3d" in at_max.reason


def test_a_p0_is_a_safety_breach_at_any_time_in_any_stage() -> None:
    for stage in (SHADOW, MICRO, SMALL, HALF):
        verdict = evaluate_stage(
            POLICY, stage, observe(days=0.1, incidents={"P0": 1}), elapsed=timedelta(hours=2)
        )
        assert verdict.verdict is Verdict.FAIL
        assert verdict.breach == "1 P0 incident reported against the candidate"


def test_a_failing_threshold_with_enough_samples_is_a_safety_breach_before_the_minimum_duration() -> None:
    rng = np.random.default_rng(53)
    failing = observe(days=1, candidate={"format_ok": rng.binomial(1, 0.95, 600).astype(float)})
    verdict = evaluate_stage(POLICY, SHADOW, failing, elapsed=timedelta(days=1))
    assert verdict.verdict is Verdict.FAIL and verdict.breach is not None
    assert "format_ok ≥ 0.99" in verdict.breach
    assert verdict.results[0].breach
    thin = observe(days=1, candidate={"format_ok": rng.binomial(1, 0.95, 100).astype(float)})
    assert evaluate_stage(POLICY, SHADOW, thin, elapsed=timedelta(days=1)).breach is None


def test_a_p1_in_shadow_fails_the_stage_without_being_a_breach() -> None:
    verdict = evaluate_stage(POLICY, SHADOW, observe(days=1, incidents={"P1": 1}), elapsed=timedelta(days=1))
    assert verdict.verdict is Verdict.FAIL and verdict.breach is None
    assert "P0/P1" in verdict.reason


def test_the_half_stage_waits_for_its_checklist() -> None:
    rng = np.random.default_rng(59)
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]

    def arm(mean_q: float, mean_c: float) -> dict[str, MetricSummary]:
        return {
            "quality": MetricSummary.from_daily({d: moments(quality(rng, 3_000, mean_q)) for d in days}),
            "format_ok": MetricSummary.from_daily(
                {d: Moments(3_000, 0.995, 3_000 * 0.995 * 0.005) for d in days}
            ),
            "cost": MetricSummary.from_daily({d: moments(cost(rng, 3_000, mean_c)) for d in days}),
        }

    obs = Observations(Window(T0, T0 + timedelta(days=3)), arm(0.8, 0.01), arm(0.8, 0.01))
    open_ = evaluate_stage(POLICY, HALF, obs, elapsed=timedelta(days=3), checked={"rollback-tested"})
    assert open_.verdict is Verdict.INCONCLUSIVE and "oncall-briefed" in open_.reason
    done = evaluate_stage(
        POLICY, HALF, obs, elapsed=timedelta(days=3), checked={"rollback-tested", "oncall-briefed"}
    )
    assert done.passed, done.reason
    canonical_json(done.as_dict())
    assert done.results[0].evidence["metrics"]["quality"]["judged_days"] == 3


def test_a_stage_without_criteria_passes_after_its_minimum_duration() -> None:
    policy: TrackPolicy = parse_track_policy(
        {
            "name": "bare",
            "metrics": {"quality": "higher"},
            "stages": [
                {"name": "pilot", "traffic": 1, "min_duration": "1h", "max_duration": "2h"},
                {"name": "production", "traffic": 100},
            ],
        }
    )
    stage = policy.stages[0]
    assert evaluate_stage(policy, stage, observe(days=0.1), elapsed=timedelta(minutes=59)).verdict is (
        Verdict.INCONCLUSIVE
    )
    assert evaluate_stage(policy, stage, observe(days=0.1), elapsed=timedelta(hours=1)).passed
    with pytest.raises(ValueError, match="production stage has no gate"):
        evaluate_stage(policy, policy.production, observe(days=0.1), elapsed=timedelta(hours=1))


def test_the_domain_layer_imports_no_numpy_or_scipy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, charter.domain.rollout, charter.domain.gate, charter.domain.routing, charter.stats; "
        "print(sorted(m for m in ('numpy', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- whole rollouts on simulated traffic -----------------------------------------------------------


def _simulate(quality_ratio: float, *, seed: int, requests_per_day: int = 20_000) -> tuple[list[str], str]:
    """Run a rollout of the default track day by day: the application's traffic is routed by the
    stage's split, the gate judges the stage every evening, `tick` applies the automatic rules and
    the operator advances on PASS (checking the checklist when asked). Returns the statuses seen
    and how it ended."""
    from charter.domain import rollout as ro

    rng = np.random.default_rng(seed)
    r = ro.start(
        rollout_id="r1",
        slot="agent",
        baseline="rel-a",
        candidate="rel-b",
        policy=POLICY,
        salt="r1",
        actor="olga",
        now=T0,
        approval_required=True,
        active=None,
    ).after
    r = ro.approve(r, actor="rita", now=T0).after
    daily: dict[str, dict[str, dict[str, Moments]]] = {"baseline": {}, "candidate": {}}
    now, seen = T0, [r.status]
    for _ in range(40):
        split = ro.split(r)
        shadow = r.stage.is_shadow
        n_candidate = int(requests_per_day * (split.shadow_sample if shadow else split.candidate / 100))
        n_baseline = requests_per_day - (0 if shadow else n_candidate)
        label = (now.date()).isoformat()
        for arm, n, q in (("baseline", n_baseline, 1.0), ("candidate", n_candidate, quality_ratio)):
            values = {
                "quality": quality(rng, n, 0.80 * q),
                "format_ok": rng.binomial(1, 0.997, n).astype(float),
                "cost": rng.lognormal(math.log(0.01) - 0.08, 0.4, n),
            }
            for metric, x in values.items():
                daily[arm].setdefault(metric, {})[label] = moments(x)
        now += timedelta(days=1)
        obs = Observations(
            Window(r.stage_entered_at, now),
            {m: MetricSummary.from_daily(d) for m, d in daily["baseline"].items()},
            {m: MetricSummary.from_daily(d) for m, d in daily["candidate"].items()},
        )
        verdict = ro.evaluate(r, obs, now=now)
        step = ro.tick(r, verdict, now=now)
        if step is not None:
            return [*seen, step.after.status], step.after.end_reason or ""
        if verdict.passed:
            r = ro.advance(r, verdict, actor="olga", now=now).after
            daily = {"baseline": {}, "candidate": {}}  # the next stage's window starts now
            seen.append(r.status)
            if r.phase is ro.Phase.PRODUCTION:
                return seen, r.end_reason or ""
        elif "oncall-briefed" in verdict.reason:
            for item in ("rollback-tested", "oncall-briefed"):
                r = ro.check(r, item, actor="olga", now=now).after
    raise AssertionError(f"the rollout neither finished nor failed: {seen}")


def test_an_equal_candidate_goes_all_the_way_to_production() -> None:
    seen, ending = _simulate(1.0, seed=101)
    assert seen == ["shadow", "canary-micro", "canary-small", "canary-half", "production"]
    assert ending == "reached production"


def test_a_candidate_3_percent_worse_is_rolled_back_in_the_first_canary() -> None:
    seen, ending = _simulate(0.97, seed=103)
    assert seen == ["shadow", "canary-micro", "rolled_back"]
    assert "canary-micro failed" in ending and "quality within 0.02 of baseline" in ending

""" "All metrics stable": no metric's daily mean left its tolerance against the baseline's.

Inputs are per-day summaries per arm (`GROUP BY date(time)` in UTC; the day label is any string,
typically `2026-03-01`). For every metric and every day on which both arms have at least
`min_samples` observations, the relative deviation is

    d = (x̄c − x̄b) / |x̄b|          (or x̄c − x̄b when x̄b = 0)

and the day is out of tolerance when d moves the wrong way by more than `tolerance`
(d < −tolerance when higher is better, d > tolerance when lower is better; |d| > tolerance when
`two_sided`). Any day out of tolerance: FAIL. Every metric judged on at least one day and none out
of tolerance: PASS. A metric with no day that has enough samples: INCONCLUSIVE. Days with too few
samples are listed in the evidence but not judged. This is a rule on point estimates, as the
policy states it; the non-inferiority criteria carry the statistical inference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter.stats.judgement import FAIL, INCONCLUSIVE, PASS, Judgement, finite
from charter.stats.moments import Moments


def relative_deviation(candidate_mean: float, baseline_mean: float) -> float:
    if baseline_mean == 0:
        return candidate_mean - baseline_mean
    return (candidate_mean - baseline_mean) / abs(baseline_mean)


def stability_test(
    baseline: Mapping[str, Mapping[str, Moments]],
    candidate: Mapping[str, Mapping[str, Moments]],
    *,
    higher_is_better: Mapping[str, bool],
    tolerance: float,
    min_samples: int,
    two_sided: bool = False,
) -> Judgement:
    """`baseline[metric][day]` and `candidate[metric][day]` are that day's moments per arm; every
    metric in `higher_is_better` is checked."""
    report: dict[str, Any] = {}
    breaches: list[str] = []
    unjudged: list[str] = []
    for metric, higher in higher_is_better.items():
        base_days = baseline.get(metric, {})
        cand_days = candidate.get(metric, {})
        days: list[dict[str, Any]] = []
        judged = 0
        for day in sorted(set(base_days) | set(cand_days)):
            b = base_days.get(day, Moments.empty())
            c = cand_days.get(day, Moments.empty())
            row: dict[str, Any] = {
                "day": day,
                "samples": {"baseline": b.count, "candidate": c.count},
                "baseline_mean": finite(b.mean) if b.count else None,
                "candidate_mean": finite(c.mean) if c.count else None,
            }
            if b.count < min_samples or c.count < min_samples:
                row["judged"] = False
                days.append(row)
                continue
            judged += 1
            deviation = relative_deviation(c.mean, b.mean)
            if two_sided:
                ok = abs(deviation) <= tolerance
            elif higher:
                ok = deviation >= -tolerance
            else:
                ok = deviation <= tolerance
            row.update(judged=True, deviation=finite(deviation), ok=ok)
            if not ok:
                breaches.append(f"{metric} on {day} ({deviation:+.2%})")
            days.append(row)
        report[metric] = {"direction": "higher" if higher else "lower", "days": days, "judged_days": judged}
        if judged == 0:
            unjudged.append(metric)
    evidence = {
        "method": "daily means, relative deviation from the baseline's",
        "tolerance": tolerance,
        "two_sided": two_sided,
        "min_samples": min_samples,
        "metrics": report,
    }
    if breaches:
        return Judgement(FAIL, f"beyond the {tolerance:.2%} tolerance: " + ", ".join(breaches), evidence)
    if unjudged:
        return Judgement(
            INCONCLUSIVE,
            f"no day with at least {min_samples} samples in both arms for: {', '.join(unjudged)}",
            evidence,
        )
    return Judgement(PASS, f"every daily mean within {tolerance:.2%} of the baseline's", evidence)

"""Non-inferiority and cost-ratio tests: candidate against concurrent baseline traffic.

Both criteria are statements about the ratio of means ρ = μc / μb of two independent arms, judged
against a reference ratio ρ0:

- non-inferiority, higher is better, margin m:  H0 ρ ≤ 1 − m   vs  H1 ρ > 1 − m
- non-inferiority, lower is better, margin m:   H0 ρ ≥ 1 + m   vs  H1 ρ < 1 + m
- cost ratio at most r:                         PASS when the upper bound of ρ is ≤ r

The test is Welch's one-sided t-test of the linear contrast D = x̄c − ρ0·x̄b, whose standard
error sqrt(s²c/nc + ρ0²·s²b/nb) carries the uncertainty of the baseline mean too (the margin is
relative to the *true* baseline mean, not to its estimate taken as a constant); the degrees of
freedom are Welch–Satterthwaite's for that contrast. Inverting the same statistic over ρ gives
Fieller's confidence interval for the ratio, whose one-sided (1 − α) bounds are reported: the
lower bound exceeds ρ0 exactly when the one-sided test at ρ0 rejects at level α.

A decision is three-way. With fewer than `min_samples` in either arm: INCONCLUSIVE. Else, for
"higher is better": PASS when the lower bound is above 1 − m, FAIL when the upper bound is below
1 − m (the candidate is worse than the margin allows, with confidence 1 − α), otherwise
INCONCLUSIVE (the data cannot tell yet; the stage is extended). When the baseline mean is not
significantly different from zero the Fieller set is unbounded and the result is INCONCLUSIVE;
relative margins also need a positive baseline mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scipy import stats as _sp

from charter.stats.judgement import FAIL, INCONCLUSIVE, PASS, Judgement, finite, too_few
from charter.stats.moments import Moments

METHOD = "Welch one-sided t-test of x̄c − ρ0·x̄b (Welch–Satterthwaite df); Fieller bounds for μc/μb"


@dataclass(frozen=True)
class RatioInterval:
    """Fieller bounds for μc/μb. `lower` and `upper` are each one-sided (1 − α) bounds (together a
    (1 − 2α) two-sided interval); both are None when the set is unbounded."""

    ratio: float | None
    lower: float | None
    upper: float | None
    df: float
    t_critical: float
    statistic: float | None  # Welch t of x̄c − ρ0·x̄b
    standard_error: float  # of x̄c − ρ0·x̄b

    @property
    def bounded(self) -> bool:
        return self.lower is not None and self.upper is not None


def welch_df(candidate: Moments, baseline: Moments, reference: float) -> float:
    """Welch–Satterthwaite degrees of freedom of x̄c − reference·x̄b (inf when both variances are 0)."""
    vc = candidate.variance / candidate.count
    vb = reference * reference * baseline.variance / baseline.count
    denominator = (vc * vc / (candidate.count - 1) if candidate.count > 1 else 0.0) + (
        vb * vb / (baseline.count - 1) if baseline.count > 1 else 0.0
    )
    if denominator == 0:
        return math.inf
    return (vc + vb) ** 2 / denominator


def fieller_interval(
    candidate: Moments, baseline: Moments, *, alpha: float, reference: float
) -> RatioInterval:
    """One-sided (1 − α) Fieller bounds for μc/μb, with Welch df taken at ρ = `reference`.

    Solves (x̄c − ρ·x̄b)² = t²·(vc + ρ²·vb), vc = s²c/nc, vb = s²b/nb:
    A·ρ² − 2B·ρ + C = 0 with A = x̄b² − t²·vb, B = x̄c·x̄b, C = x̄c² − t²·vc;
    ρ = (B ± sqrt(B² − A·C)) / A, bounded only when A > 0.
    """
    if candidate.count < 2 or baseline.count < 2:
        raise ValueError("a ratio interval needs at least two observations per arm")
    vc = candidate.variance / candidate.count
    vb = baseline.variance / baseline.count
    df = welch_df(candidate, baseline, reference)
    t = float(_sp.t.ppf(1.0 - alpha, df))
    xc, xb = candidate.mean, baseline.mean
    se = math.sqrt(vc + reference * reference * vb)
    contrast = xc - reference * xb
    if se > 0:
        statistic: float | None = contrast / se
    else:
        statistic = math.copysign(math.inf, contrast) if contrast else 0.0
    a = xb * xb - t * t * vb
    ratio = xc / xb if xb != 0 else None
    if a <= 0:
        return RatioInterval(ratio, None, None, df, t, statistic, se)
    b = xc * xb
    c = xc * xc - t * t * vc
    root = math.sqrt(max(b * b - a * c, 0.0))
    return RatioInterval(ratio, (b - root) / a, (b + root) / a, df, t, statistic, se)


def noninferiority_test(
    candidate: Moments,
    baseline: Moments,
    *,
    margin: float,
    alpha: float,
    min_samples: int,
    higher_is_better: bool,
) -> Judgement:
    """Is the candidate's mean within `margin` (a fraction of the baseline mean) of the baseline's?"""
    reference = 1.0 - margin if higher_is_better else 1.0 + margin
    evidence: dict[str, Any] = {
        "method": METHOD,
        "direction": "higher" if higher_is_better else "lower",
        "samples": {"baseline": baseline.count, "candidate": candidate.count},
        "min_samples": min_samples,
        "estimates": _estimates(candidate, baseline),
        "threshold": {"margin": margin, "ratio": reference},
        "alpha": alpha,
        "confidence_bound": None,
    }
    short = too_few({"baseline": baseline.count, "candidate": candidate.count}, max(min_samples, 2))
    if short:
        return Judgement(INCONCLUSIVE, short, evidence)
    if baseline.mean <= 0:
        return Judgement(
            INCONCLUSIVE, "the baseline mean is not positive, so a relative margin is undefined", evidence
        )
    interval = fieller_interval(candidate, baseline, alpha=alpha, reference=reference)
    statistic = interval.statistic if higher_is_better else _negate(interval.statistic)
    p_value = float(_sp.t.sf(statistic, interval.df)) if statistic is not None else None
    bound = interval.lower if higher_is_better else interval.upper
    evidence["confidence_bound"] = {
        "side": "lower" if higher_is_better else "upper",
        "confidence": 1.0 - alpha,
        "ratio": finite(bound),
        "other_side": finite(interval.upper if higher_is_better else interval.lower),
    }
    evidence["test"] = {
        "statistic": finite(statistic),
        "df": finite(interval.df),
        "t_critical": finite(interval.t_critical),
        "p_value": finite(p_value),
        "standard_error": finite(interval.standard_error),
    }
    if not interval.bounded or interval.lower is None or interval.upper is None:
        return Judgement(
            INCONCLUSIVE, "the baseline mean is too uncertain for a confidence bound on the ratio", evidence
        )
    worse = f"{margin:.4g} worse than the baseline"
    if higher_is_better:
        if interval.lower > reference:
            return Judgement(PASS, f"ratio ≥ {interval.lower:.4f} > {reference:.4g}: not {worse}", evidence)
        if interval.upper < reference:
            return Judgement(
                FAIL, f"ratio ≤ {interval.upper:.4f} < {reference:.4g}: more than {worse}", evidence
            )
        return Judgement(
            INCONCLUSIVE,
            _straddle(interval.lower, interval.upper, reference),
            evidence,
        )
    if interval.upper < reference:
        return Judgement(PASS, f"ratio ≤ {interval.upper:.4f} < {reference:.4g}: not {worse}", evidence)
    if interval.lower > reference:
        return Judgement(FAIL, f"ratio ≥ {interval.lower:.4f} > {reference:.4g}: more than {worse}", evidence)
    return Judgement(
        INCONCLUSIVE,
        _straddle(interval.lower, interval.upper, reference),
        evidence,
    )


def cost_ratio_test(
    candidate: Moments, baseline: Moments, *, max_ratio: float, alpha: float, min_samples: int
) -> Judgement:
    """Is μc/μb at most `max_ratio`, judged on the one-sided (1 − α) Fieller upper bound?"""
    evidence: dict[str, Any] = {
        "method": METHOD,
        "samples": {"baseline": baseline.count, "candidate": candidate.count},
        "min_samples": min_samples,
        "estimates": _estimates(candidate, baseline),
        "threshold": {"max_ratio": max_ratio},
        "alpha": alpha,
        "confidence_bound": None,
    }
    short = too_few({"baseline": baseline.count, "candidate": candidate.count}, max(min_samples, 2))
    if short:
        return Judgement(INCONCLUSIVE, short, evidence)
    if baseline.mean <= 0:
        return Judgement(INCONCLUSIVE, "the baseline mean is not positive, so a ratio is undefined", evidence)
    interval = fieller_interval(candidate, baseline, alpha=alpha, reference=max_ratio)
    evidence["confidence_bound"] = {
        "side": "upper",
        "confidence": 1.0 - alpha,
        "ratio": finite(interval.upper),
        "other_side": finite(interval.lower),
    }
    evidence["test"] = {
        "df": finite(interval.df),
        "t_critical": finite(interval.t_critical),
        "standard_error": finite(interval.standard_error),
    }
    if interval.lower is None or interval.upper is None:
        return Judgement(
            INCONCLUSIVE, "the baseline mean is too uncertain for a confidence bound on the ratio", evidence
        )
    if interval.upper <= max_ratio:
        return Judgement(PASS, f"ratio ≤ {interval.upper:.4f} ≤ {max_ratio:.4g}", evidence)
    if interval.lower > max_ratio:
        return Judgement(FAIL, f"ratio ≥ {interval.lower:.4f} > {max_ratio:.4g}", evidence)
    return Judgement(
        INCONCLUSIVE,
        _straddle(interval.lower, interval.upper, max_ratio),
        evidence,
    )


def _estimates(candidate: Moments, baseline: Moments) -> dict[str, Any]:
    ratio = candidate.mean / baseline.mean if baseline.mean else None
    return {
        "baseline": {"mean": finite(baseline.mean), "sd": finite(baseline.sd)},
        "candidate": {"mean": finite(candidate.mean), "sd": finite(candidate.sd)},
        "ratio": finite(ratio),
        "relative_difference": finite(ratio - 1.0) if ratio is not None else None,
    }


def _straddle(lower: float, upper: float, reference: float) -> str:
    return f"ratio bounds [{lower:.4f}, {upper:.4f}] straddle {reference:.4g}; more data needed"


def _negate(x: float | None) -> float | None:
    return None if x is None else -x

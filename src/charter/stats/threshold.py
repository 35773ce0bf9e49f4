"""A threshold on the candidate arm alone: "format_ok ≥ 0.99 over at least 500 samples".

Without `alpha` (the default) the rule is the plain one a policy reader expects: with at least
`min_samples` observations, PASS when the candidate's mean is on the right side of the threshold,
FAIL when it is not; INCONCLUSIVE below `min_samples`.

With `alpha`, the decision uses a one-sided (1 − α) Student-t confidence bound of the mean instead
(x̄ ∓ t(1−α, n−1)·s/√n): for a minimum, PASS when the lower bound is ≥ the minimum, FAIL when the
upper bound is below it, INCONCLUSIVE in between (mirrored for a maximum). That trades a slower
PASS for fewer spurious FAILs, which matter here because a threshold FAIL is a safety breach.
"""

from __future__ import annotations

import math
from typing import Any

from charter.stats.judgement import FAIL, INCONCLUSIVE, PASS, Judgement, finite, too_few
from charter.stats.moments import Moments


def threshold_test(
    candidate: Moments,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_samples: int,
    alpha: float | None = None,
) -> Judgement:
    """Judge the candidate's mean against exactly one of `minimum` (≥) or `maximum` (≤)."""
    if (minimum is None) == (maximum is None):
        raise ValueError("threshold_test needs exactly one of minimum or maximum")
    evidence: dict[str, Any] = {
        "samples": {"candidate": candidate.count},
        "min_samples": min_samples,
        "estimates": {"candidate": {"mean": finite(candidate.mean), "sd": finite(candidate.sd)}},
        "threshold": {"min": minimum} if minimum is not None else {"max": maximum},
        "alpha": alpha,
        "confidence_bound": None,
    }
    short = too_few({"candidate": candidate.count}, max(min_samples, 1))
    if short:
        return Judgement(INCONCLUSIVE, short, evidence)
    mean = candidate.mean
    if alpha is None:
        evidence["method"] = "point estimate of the candidate mean"
        if minimum is not None:
            ok = mean >= minimum
            reason = f"mean {mean:.4f} {'≥' if ok else '<'} {minimum:.4g}"
            return Judgement(PASS if ok else FAIL, reason, evidence)
        assert maximum is not None
        ok = mean <= maximum
        reason = f"mean {mean:.4f} {'≤' if ok else '>'} {maximum:.4g}"
        return Judgement(PASS if ok else FAIL, reason, evidence)

    from scipy import stats as _sp

    evidence["method"] = "one-sided Student-t confidence bounds of the candidate mean"
    n = candidate.count
    half = float(_sp.t.ppf(1.0 - alpha, n - 1)) * candidate.sd / math.sqrt(n) if n > 1 else math.inf
    lower, upper = mean - half, mean + half
    if minimum is not None:
        evidence["confidence_bound"] = {
            "side": "lower",
            "confidence": 1.0 - alpha,
            "value": finite(lower),
            "other_side": finite(upper),
        }
        if lower >= minimum:
            return Judgement(PASS, f"mean ≥ {lower:.4f} ≥ {minimum:.4g}", evidence)
        if upper < minimum:
            return Judgement(FAIL, f"mean ≤ {upper:.4f} < {minimum:.4g}", evidence)
        return Judgement(INCONCLUSIVE, f"bounds [{lower:.4f}, {upper:.4f}] straddle {minimum:.4g}", evidence)
    assert maximum is not None
    evidence["confidence_bound"] = {
        "side": "upper",
        "confidence": 1.0 - alpha,
        "value": finite(upper),
        "other_side": finite(lower),
    }
    if upper <= maximum:
        return Judgement(PASS, f"mean ≤ {upper:.4f} ≤ {maximum:.4g}", evidence)
    if lower > maximum:
        return Judgement(FAIL, f"mean ≥ {lower:.4f} > {maximum:.4g}", evidence)
    return Judgement(INCONCLUSIVE, f"bounds [{lower:.4f}, {upper:.4f}] straddle {maximum:.4g}", evidence)

"""Statistics for the deployment-track gate (numpy/scipy allowed here, unlike in `domain/`).

Inputs are summary statistics, never raw records, so the service computes them with SQL
aggregates over millions of transaction records (see `moments`):

- `Moments(count, mean, m2)`: one metric, one arm, one window (or one day bucket).

Tests, each returning a `Judgement(decision, reason, evidence)` with a decision of "pass",
"fail" or "inconclusive" and JSON-safe evidence:

- `noninferiority.noninferiority_test(candidate, baseline, margin=, alpha=, min_samples=,
  higher_is_better=)`: one-sided Welch test, margin relative to the baseline mean;
- `noninferiority.cost_ratio_test(candidate, baseline, max_ratio=, alpha=, min_samples=)`: the
  Fieller upper confidence bound of μc/μb against the maximum;
- `threshold.threshold_test(candidate, minimum=|maximum=, min_samples=, alpha=None)`;
- `stability.stability_test(baseline_daily, candidate_daily, higher_is_better=, tolerance=,
  min_samples=, two_sided=False)`.

This package imports only `moments` and `judgement` (standard library) eagerly, so that the pure
domain layer can use the input types; the modules that need scipy are imported by name, lazily.
docs/tracks.md gives the formulas.
"""

from charter.stats.judgement import FAIL, INCONCLUSIVE, PASS, Decision, Judgement
from charter.stats.moments import Moments, combine_daily

__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "Decision", "Judgement", "Moments", "combine_daily"]

"""Summary statistics of one metric in one arm: the only input the gate's tests need.

A `Moments` value is (count, mean, M2), where M2 is the sum of squared deviations from the mean
(Welford's M2, so the sample variance is M2 / (count − 1)). It can be built from what SQL
aggregates return, without loading the transaction records:

- SQLite, any engine:  `COUNT(x), SUM(x), SUM(x * x)`            → `Moments.from_sums`
- PostgreSQL:          `COUNT(x), AVG(x), VAR_SAMP(x)`            → `Moments.from_mean_variance`
- in Python, for tests: a sequence of floats                     → `Moments.from_values`

Summaries of disjoint sets combine exactly with `merge` (Chan et al.'s parallel formula), so
per-day buckets (`GROUP BY date(time)`) add up to the stage total. This module is standard
library only: the domain layer imports it at module top.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Sums of squares lose precision to cancellation; a negative M2 this small (relative to the sum
# of squares) is rounding noise and is clamped to zero. Anything larger is a caller's mistake.
_CANCELLATION_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class Moments:
    """count, mean and M2 = Σ (x − mean)² of one metric in one arm over a window."""

    count: int
    mean: float = 0.0
    m2: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ValueError(f"Moments.count must be a non-negative integer, not {self.count!r}")
        if not (math.isfinite(self.mean) and math.isfinite(self.m2)):
            raise ValueError(f"Moments need finite mean and M2, not mean={self.mean!r}, m2={self.m2!r}")
        if self.m2 < 0:
            raise ValueError(f"Moments.m2 is a sum of squares and cannot be negative ({self.m2!r})")
        if self.count == 0 and (self.mean != 0 or self.m2 != 0):
            raise ValueError("empty Moments (count 0) must have mean 0 and M2 0")
        if self.count == 1 and self.m2 != 0:
            raise ValueError("a single observation has M2 0")

    # --- constructors ------------------------------------------------------------------------

    @classmethod
    def empty(cls) -> Moments:
        return cls(0, 0.0, 0.0)

    @classmethod
    def from_sums(
        cls, count: int, total: float | None, total_of_squares: float | None, *, shift: float = 0.0
    ) -> Moments:
        """From `COUNT(x)`, `SUM(x - shift)` and `SUM((x - shift) * (x - shift))`.

        `shift` (any constant near the mean, such as yesterday's mean) avoids the cancellation in
        Σx² − (Σx)²/n when the spread is tiny compared with the mean; 0 is fine for metrics whose
        coefficient of variation is above ~1e-4. SQL returns NULL sums for no rows: pass None.
        """
        if count == 0:
            return cls.empty()
        s1 = float(total or 0.0)
        s2 = float(total_of_squares or 0.0)
        mean = s1 / count
        m2 = s2 - s1 * mean
        if m2 < 0:
            if m2 < -_CANCELLATION_TOLERANCE * max(abs(s2), 1.0):
                raise ValueError(f"inconsistent sums: SUM(x²)={s2!r} is below SUM(x)²/COUNT={s1 * mean!r}")
            m2 = 0.0
        return cls(count, mean + shift, 0.0 if count == 1 else m2)

    @classmethod
    def from_mean_variance(cls, count: int, mean: float | None, variance: float | None) -> Moments:
        """From `COUNT(x)`, `AVG(x)` and the sample variance `VAR_SAMP(x)` (NULL below 2 rows)."""
        if count == 0:
            return cls.empty()
        m2 = 0.0 if count < 2 or variance is None else max(float(variance), 0.0) * (count - 1)
        return cls(count, float(mean or 0.0), m2)

    @classmethod
    def from_values(cls, values: Iterable[float]) -> Moments:
        """Welford's one-pass algorithm over plain numbers."""
        count, mean, m2 = 0, 0.0, 0.0
        for raw in values:
            x = float(raw)
            count += 1
            delta = x - mean
            mean += delta / count
            m2 += delta * (x - mean)
        return cls(count, mean if count else 0.0, max(m2, 0.0) if count > 1 else 0.0)

    # --- combination and derived values ------------------------------------------------------

    def merge(self, other: Moments) -> Moments:
        """The moments of the union of two disjoint sets of observations."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        return Moments(count, mean, m2)

    @classmethod
    def combine(cls, parts: Iterable[Moments]) -> Moments:
        total = cls.empty()
        for part in parts:
            total = total.merge(part)
        return total

    @property
    def variance(self) -> float:
        """Sample variance (n − 1 in the denominator); 0 below two observations."""
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "sd": self.sd}


def combine_daily(daily: Mapping[str, Moments]) -> Moments:
    """The total over day buckets (in day order, so the result does not depend on dict order)."""
    return Moments.combine(daily[day] for day in sorted(daily))

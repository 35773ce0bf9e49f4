"""The criteria a track stage can require, as values.

Each criterion is a frozen dataclass with the keys of its policy-file form (`as_dict` writes it
back) and a human `label`. What a criterion *means* — how it is judged on observed traffic — is in
`charter.domain.gate` (the stage rules) and `charter.stats` (the tests); parsing and validation of
the file form are in `charter.domain.tracks`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

SEVERITIES = ("P0", "P1", "P2", "P3")
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 100


class CriterionKind(enum.StrEnum):
    THRESHOLD = "threshold"
    NON_INFERIORITY = "non_inferiority"
    INCIDENTS = "incidents"
    COST_RATIO = "cost_ratio"
    STABLE = "stable"
    CHECKLIST = "checklist"


# Judged only once the stage's minimum duration has passed; the others count at any time.
QUALITY_KINDS = frozenset({CriterionKind.NON_INFERIORITY, CriterionKind.COST_RATIO, CriterionKind.STABLE})


# --- criteria ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """The candidate's mean of `metric` is ≥ `min` (or ≤ `max`) over ≥ `min_samples` records.
    Failing with enough samples is a safety breach. `alpha` switches from the point estimate to
    a one-sided confidence bound."""

    metric: str
    min: float | None = None
    max: float | None = None
    min_samples: int = DEFAULT_MIN_SAMPLES
    alpha: float | None = None
    kind: ClassVar[CriterionKind] = CriterionKind.THRESHOLD

    @property
    def label(self) -> str:
        bound = f"≥ {self.min:g}" if self.min is not None else f"≤ {self.max:g}"
        return f"{self.metric} {bound}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "metric": self.metric}
        out.update({"min": self.min} if self.min is not None else {"max": self.max})
        out["min_samples"] = self.min_samples
        if self.alpha is not None:
            out["alpha"] = self.alpha
        return out


@dataclass(frozen=True)
class NonInferiority:
    """The candidate's mean of `metric` is not worse than the concurrent baseline's by more than
    `margin` × the baseline mean: a one-sided Welch test at level `alpha`, ≥ `min_samples` per arm."""

    metric: str
    margin: float
    alpha: float = DEFAULT_ALPHA
    min_samples: int = DEFAULT_MIN_SAMPLES
    kind: ClassVar[CriterionKind] = CriterionKind.NON_INFERIORITY

    @property
    def label(self) -> str:
        return f"{self.metric} within {self.margin:.4g} of baseline"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "metric": self.metric,
            "margin": self.margin,
            "alpha": self.alpha,
            "min_samples": self.min_samples,
        }


@dataclass(frozen=True)
class Incidents:
    """At most `max` incidents of the listed severities against the candidate during the stage.
    (A P0 is a safety breach whatever the criteria say.)"""

    severity: tuple[str, ...]
    max: int = 0
    kind: ClassVar[CriterionKind] = CriterionKind.INCIDENTS

    @property
    def label(self) -> str:
        return f"≤ {self.max} {'/'.join(self.severity)} incidents"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "severity": list(self.severity), "max": self.max}


@dataclass(frozen=True)
class CostRatio:
    """candidate mean / baseline mean of `metric` ≤ `max`, judged on the ratio's one-sided
    (1 − `alpha`) upper confidence bound (Fieller), ≥ `min_samples` per arm."""

    metric: str
    max: float
    alpha: float = DEFAULT_ALPHA
    min_samples: int = DEFAULT_MIN_SAMPLES
    kind: ClassVar[CriterionKind] = CriterionKind.COST_RATIO

    @property
    def label(self) -> str:
        return f"{self.metric} ≤ {self.max:.4g} × baseline"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "metric": self.metric,
            "max": self.max,
            "alpha": self.alpha,
            "min_samples": self.min_samples,
        }


@dataclass(frozen=True)
class Stable:
    """No daily mean of `metrics` (default: every metric the policy declares) moved the wrong way
    by more than `tolerance` (relative) against the baseline's in any day bucket of the stage;
    days with fewer than `min_samples` per arm are not judged. `two_sided` checks both ways."""

    tolerance: float
    metrics: tuple[str, ...] | None = None
    min_samples: int = DEFAULT_MIN_SAMPLES
    two_sided: bool = False
    kind: ClassVar[CriterionKind] = CriterionKind.STABLE

    @property
    def label(self) -> str:
        return f"all metrics stable within {self.tolerance:.4g}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "tolerance": self.tolerance}
        if self.metrics is not None:
            out["metrics"] = list(self.metrics)
        out["min_samples"] = self.min_samples
        if self.two_sided:
            out["two_sided"] = True
        return out


@dataclass(frozen=True)
class Checklist:
    """Manual items an operator checks off (`charter rollout check SLOT --item NAME`)."""

    items: tuple[str, ...]
    kind: ClassVar[CriterionKind] = CriterionKind.CHECKLIST

    @property
    def label(self) -> str:
        return "checklist: " + ", ".join(self.items)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "items": list(self.items)}


Criterion = Threshold | NonInferiority | Incidents | CostRatio | Stable | Checklist

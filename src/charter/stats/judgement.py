"""What every test in this package returns: a three-way decision, a reason and its evidence."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["pass", "fail", "inconclusive"]
PASS: Decision = "pass"
FAIL: Decision = "fail"
INCONCLUSIVE: Decision = "inconclusive"


@dataclass(frozen=True)
class Judgement:
    """`decision` of one test, a one-line `reason`, and `evidence`: a JSON-safe mapping (finite
    floats, ints, strings, None, lists and dicts only) fit for an audit event."""

    decision: Decision
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def finite(x: float | None) -> float | None:
    """`x` if it is a finite number, else None: evidence must survive canonical JSON."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def too_few(arms: Mapping[str, int], min_samples: int) -> str | None:
    """The reason to stay INCONCLUSIVE when an arm has fewer than `min_samples`; None if enough."""
    short = {arm: n for arm, n in arms.items() if n < min_samples}
    if not short:
        return None
    have = ", ".join(f"{arm} {n}" for arm, n in arms.items())
    return f"too few samples ({have}); each arm needs at least {min_samples}"

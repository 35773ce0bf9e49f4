"""Track policies: the stages a candidate release goes through and what each stage must show.

A track policy is data (the `tracks` section of a policy document, or a slot's own YAML file). It
names the metrics the application reports with their direction, whether a MAJOR model change
needs a reviewer's approval before real traffic, the share of requests mirrored to the candidate
during shadow, and the stages in order. Every stage but the last has a traffic share (0 = shadow:
the candidate runs beside the baseline, its output logged, never served), a minimum and a maximum
duration, and criteria; the last stage is production (100 %) with its rollback window.

`parse_track_policy` turns a YAML-shaped mapping into a `TrackPolicy` or raises `InvalidSpec`
saying what was wrong and what would be accepted; `TrackPolicy.as_dict` writes it back in the same
shape. `DEFAULT_TRACK_POLICY_YAML` is the built-in default, written out. The criteria are values
in `charter.domain.criteria`; their semantics are in `charter.domain.gate` and docs/tracks.md.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from charter.domain.canonical import canonical_json
from charter.domain.criteria import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_SAMPLES,
    SEVERITIES,
    Checklist,
    CostRatio,
    Criterion,
    CriterionKind,
    Incidents,
    NonInferiority,
    Stable,
    Threshold,
)
from charter.domain.semver import Bump
from charter.domain.times import parse_duration
from charter.errors import InvalidInput, InvalidSpec

DEFAULT_TRACK_POLICY_YAML = """\
name: default
approval: {major: required}          # before the first stage with real traffic
metrics: {quality: higher, format_ok: higher, cost: lower}
shadow_sample: 1.0                   # share of requests that also run the candidate in shadow
stages:
  - {name: shadow, traffic: 0, min_duration: 3d, max_duration: 7d, criteria: [
      {kind: threshold, metric: format_ok, min: 0.99, min_samples: 500},
      {kind: incidents, severity: [P0, P1], max: 0}]}
  - {name: canary-micro, traffic: 5, min_duration: 2d, max_duration: 3d, criteria: [
      {kind: non_inferiority, metric: quality, margin: 0.02, alpha: 0.05, min_samples: 400},
      {kind: incidents, severity: [P0], max: 0}]}
  - {name: canary-small, traffic: 20, min_duration: 3d, max_duration: 5d, criteria: [
      {kind: non_inferiority, metric: quality, margin: 0.01, alpha: 0.05, min_samples: 1000},
      {kind: cost_ratio, metric: cost, max: 1.10}]}
  - {name: canary-half, traffic: 50, min_duration: 3d, max_duration: 5d, criteria: [
      {kind: stable, tolerance: 0.02}, {kind: checklist, items: [rollback-tested, oncall-briefed]}]}
  - {name: production, traffic: 100, rollback_window: 30d}
"""

# The same document as Python data (the domain layer parses no YAML); a test keeps them equal.
DEFAULT_TRACK_POLICY: Mapping[str, Any] = {
    "name": "default",
    "approval": {"major": "required"},
    "metrics": {"quality": "higher", "format_ok": "higher", "cost": "lower"},
    "shadow_sample": 1.0,
    "stages": [
        {
            "name": "shadow",
            "traffic": 0,
            "min_duration": "3d",
            "max_duration": "7d",
            "criteria": [
                {"kind": "threshold", "metric": "format_ok", "min": 0.99, "min_samples": 500},
                {"kind": "incidents", "severity": ["P0", "P1"], "max": 0},
            ],
        },
        {
            "name": "canary-micro",
            "traffic": 5,
            "min_duration": "2d",
            "max_duration": "3d",
            "criteria": [
                {
                    "kind": "non_inferiority",
                    "metric": "quality",
                    "margin": 0.02,
                    "alpha": 0.05,
                    "min_samples": 400,
                },
                {"kind": "incidents", "severity": ["P0"], "max": 0},
            ],
        },
        {
            "name": "canary-small",
            "traffic": 20,
            "min_duration": "3d",
            "max_duration": "5d",
            "criteria": [
                {
                    "kind": "non_inferiority",
                    "metric": "quality",
                    "margin": 0.01,
                    "alpha": 0.05,
                    "min_samples": 1000,
                },
                {"kind": "cost_ratio", "metric": "cost", "max": 1.10},
            ],
        },
        {
            "name": "canary-half",
            "traffic": 50,
            "min_duration": "3d",
            "max_duration": "5d",
            "criteria": [
                {"kind": "stable", "tolerance": 0.02},
                {"kind": "checklist", "items": ["rollback-tested", "oncall-briefed"]},
            ],
        },
        {"name": "production", "traffic": 100, "rollback_window": "30d"},
    ],
}

DEFAULT_ROLLBACK_WINDOW = timedelta(days=30)
TRAFFIC_RESOLUTION = 100  # routing has 10,000 buckets: traffic is a percentage with two decimals

_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_METRIC = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")


class Direction(enum.StrEnum):
    HIGHER = "higher"
    LOWER = "lower"

    @property
    def higher_is_better(self) -> bool:
        return self is Direction.HIGHER


# --- stages and policies -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One step of a track. `traffic` is the percentage of requests the candidate serves (0 means
    shadow; 100 means production, the last stage, which has a `rollback_window` and no criteria)."""

    name: str
    traffic: float
    min_duration: timedelta = timedelta(0)
    max_duration: timedelta = timedelta(0)
    criteria: tuple[Criterion, ...] = ()
    rollback_window: timedelta | None = None

    @property
    def is_production(self) -> bool:
        return self.traffic >= 100

    @property
    def is_shadow(self) -> bool:
        return self.traffic == 0

    @property
    def buckets(self) -> int:
        """How many of the 10,000 routing buckets go to the candidate."""
        return round(self.traffic * TRAFFIC_RESOLUTION)

    def as_dict(self) -> dict[str, Any]:
        traffic: int | float = int(self.traffic) if float(self.traffic).is_integer() else self.traffic
        if self.is_production:
            return {
                "name": self.name,
                "traffic": traffic,
                "rollback_window": format_duration(self.rollback_window or DEFAULT_ROLLBACK_WINDOW),
            }
        return {
            "name": self.name,
            "traffic": traffic,
            "min_duration": format_duration(self.min_duration),
            "max_duration": format_duration(self.max_duration),
            "criteria": [c.as_dict() for c in self.criteria],
        }


@dataclass(frozen=True)
class TrackPolicy:
    name: str
    metrics: Mapping[str, Direction]
    stages: tuple[Stage, ...]
    approval: frozenset[Bump] = frozenset({Bump.MAJOR})  # change sizes that need a reviewer's approval
    shadow_sample: float = 1.0
    checklist_items: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        items: list[str] = []
        for stage in self.stages:
            for criterion in stage.criteria:
                if isinstance(criterion, Checklist):
                    items.extend(i for i in criterion.items if i not in items)
        object.__setattr__(self, "checklist_items", tuple(items))

    @property
    def production(self) -> Stage:
        return self.stages[-1]

    @property
    def rollback_window(self) -> timedelta:
        return self.production.rollback_window or DEFAULT_ROLLBACK_WINDOW

    def index(self, stage: str) -> int:
        for i, candidate in enumerate(self.stages):
            if candidate.name == stage:
                return i
        raise InvalidInput(
            f"track policy {self.name!r} has no stage {stage!r}; its stages are: "
            + ", ".join(s.name for s in self.stages)
        )

    def stage(self, name: str) -> Stage:
        return self.stages[self.index(name)]

    @property
    def first_live_index(self) -> int:
        """The first stage that serves real traffic to the candidate (production at the latest)."""
        return next(i for i, s in enumerate(self.stages) if s.traffic > 0)

    def needs_approval(self, change: Bump | None) -> bool:
        """Whether a candidate whose model differs from production's by `change` (None: same model
        version) needs a reviewer's approval before the first stage with real traffic. The service
        passes Bump.MAJOR when the model itself is a different one."""
        return change is not None and any(change >= level for level in self.approval)

    def as_dict(self) -> dict[str, Any]:
        """The policy in its file shape; `parse_track_policy(p.as_dict()) == p`."""
        return {
            "name": self.name,
            "approval": {
                b.word: ("required" if b in self.approval else "none") for b in sorted(Bump, reverse=True)
            },
            "metrics": {m: d.value for m, d in self.metrics.items()},
            "shadow_sample": self.shadow_sample,
            "stages": [s.as_dict() for s in self.stages],
        }

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of `as_dict()`: what a rollout pins at start."""
        return hashlib.sha256(canonical_json(self.as_dict())).hexdigest()


def default_track_policy() -> TrackPolicy:
    return parse_track_policy(DEFAULT_TRACK_POLICY)


def format_duration(value: timedelta) -> str:
    """The shortest exact `Nd`, `Nh`, `Nm` or `Ns` for a whole number of seconds."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- parsing -------------------------------------------------------------------------------------

_POLICY_KEYS = ("name", "approval", "metrics", "shadow_sample", "stages")
_STAGE_KEYS = ("name", "traffic", "min_duration", "max_duration", "criteria")
_PRODUCTION_KEYS = ("name", "traffic", "rollback_window")
_APPROVAL_VALUES = ("required", "none")


def parse_track_policy(data: Any, *, where: str = "track policy") -> TrackPolicy:
    """Validate a YAML-shaped mapping (see DEFAULT_TRACK_POLICY_YAML) into a TrackPolicy."""
    if not isinstance(data, Mapping):
        raise InvalidSpec(f"{where} must be a mapping with keys {', '.join(_POLICY_KEYS)}")
    _known(data, _POLICY_KEYS, where)
    name = _slug(data.get("name"), f"{where}: name")
    where = f"track policy {name!r}"
    metrics = _metrics(data.get("metrics"), where)
    approval = _approval(data.get("approval", {"major": "required"}), where)
    shadow_sample = _number(
        data.get("shadow_sample", 1.0), f"{where}: shadow_sample", "a share between 0 and 1"
    )
    if not 0 < shadow_sample <= 1:
        raise InvalidSpec(
            f"{where}: shadow_sample must be above 0 and at most 1 (1.0 = every request), not {shadow_sample}"
        )
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, Sequence) or isinstance(raw_stages, str) or len(raw_stages) < 2:
        raise InvalidSpec(
            f"{where}: stages must be a list of at least two stages: one or more rollout stages, then "
            "production (traffic 100)"
        )
    stages = tuple(
        _stage(raw, i, len(raw_stages), metrics, f"{where}, stage {i + 1}")
        for i, raw in enumerate(raw_stages)
    )
    names = [s.name for s in stages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidSpec(f"{where}: stage names must be unique; repeated: {', '.join(duplicates)}")
    for before, after in itertools.pairwise(stages):
        if after.traffic < before.traffic:
            raise InvalidSpec(
                f"{where}: traffic must never decrease from one stage to the next ({before.name} "
                f"{before.traffic:g} % → {after.name} {after.traffic:g} %), so that a request routed to the "
                "candidate stays there"
            )
    return TrackPolicy(name, metrics, stages, approval, shadow_sample)


def validate_tracks_section(body: Any) -> dict[str, Any]:
    """The `tracks` section of a policy document: track-policy name → policy mapping. Returns the
    normalised mappings (durations, defaults written out); a policy's `name`, when given, must
    match its key."""
    if not isinstance(body, Mapping):
        raise InvalidSpec("policy section 'tracks' must map track-policy names to track policies")
    out: dict[str, Any] = {}
    for key, value in body.items():
        label = _slug(key, "policy section 'tracks': a track-policy name")
        if not isinstance(value, Mapping):
            raise InvalidSpec(f"policy tracks.{label} must be a track policy (a mapping)")
        if "name" in value and value["name"] != label:
            raise InvalidSpec(
                f"policy tracks.{label} is named {value['name']!r}; the name must match its key"
            )
        out[label] = parse_track_policy({**value, "name": label}).as_dict()
    return out


def track_policies(section: Mapping[str, Any]) -> dict[str, TrackPolicy]:
    """Every track policy in force: the built-in `default` unless the section overrides it, plus
    the section's own."""
    policies = {"default": default_track_policy()}
    for key, value in section.items():
        policies[key] = parse_track_policy({**value, "name": key})
    return policies


def _stage(raw: Any, i: int, count: int, metrics: Mapping[str, Direction], where: str) -> Stage:
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{where} must be a mapping with keys {', '.join(_STAGE_KEYS)}")
    name = _slug(raw.get("name"), f"{where}: name")
    where = f"{where} ({name})"
    traffic = _number(raw.get("traffic"), f"{where}: traffic", "a percentage from 0 to 100")
    if not 0 <= traffic <= 100:
        raise InvalidSpec(f"{where}: traffic must be a percentage from 0 to 100, not {traffic:g}")
    if not math.isclose(traffic * TRAFFIC_RESOLUTION, round(traffic * TRAFFIC_RESOLUTION), abs_tol=1e-6):
        raise InvalidSpec(f"{where}: traffic {traffic} has more than two decimals; routing resolves 0.01 %")
    traffic = round(traffic * TRAFFIC_RESOLUTION) / TRAFFIC_RESOLUTION
    last = i == count - 1
    if last:
        if traffic != 100:
            raise InvalidSpec(
                f"{where}: the last stage is production and must have traffic 100, not {traffic:g}"
            )
        _known(raw, _PRODUCTION_KEYS, where, hint="production has no durations or criteria")
        window = _duration(raw.get("rollback_window", "30d"), f"{where}: rollback_window")
        return Stage(name, traffic, rollback_window=window)
    if traffic == 100:
        raise InvalidSpec(f"{where}: only the last stage (production) may have traffic 100")
    _known(raw, _STAGE_KEYS, where, hint="rollback_window belongs to the production stage")
    for key in ("min_duration", "max_duration"):
        if key not in raw:
            raise InvalidSpec(f"{where}: {key} is required (a duration such as 3d)")
    low = _duration(raw["min_duration"], f"{where}: min_duration")
    high = _duration(raw["max_duration"], f"{where}: max_duration")
    if high <= timedelta(0) or low > high:
        raise InvalidSpec(
            f"{where}: durations need 0 ≤ min_duration ≤ max_duration and max_duration > 0 "
            f"(got {format_duration(low)} and {format_duration(high)})"
        )
    raw_criteria = raw.get("criteria", [])
    if not isinstance(raw_criteria, Sequence) or isinstance(raw_criteria, str):
        raise InvalidSpec(f"{where}: criteria must be a list of criteria")
    criteria = tuple(
        _criterion(c, metrics, f"{where}, criterion {j + 1}") for j, c in enumerate(raw_criteria)
    )
    return Stage(name, traffic, low, high, criteria)


def _criterion(raw: Any, metrics: Mapping[str, Direction], where: str) -> Criterion:
    kinds = ", ".join(k.value for k in CriterionKind)
    if not isinstance(raw, Mapping) or "kind" not in raw:
        raise InvalidSpec(f"{where} must be a mapping with a kind ({kinds})")
    try:
        kind = CriterionKind(raw["kind"])
    except ValueError:
        raise InvalidSpec(f"{where}: unknown kind {raw['kind']!r}; accepted: {kinds}") from None
    where = f"{where} ({kind.value})"
    keys, parse = _CRITERIA[kind]
    _known(raw, ("kind", *keys), where)
    return parse(raw, metrics, where)


def _threshold(raw: Mapping[str, Any], metrics: Mapping[str, Direction], where: str) -> Threshold:
    metric = _metric(raw, metrics, where)
    if ("min" in raw) == ("max" in raw):
        raise InvalidSpec(f"{where}: give exactly one of min (the mean must be at least) or max (at most)")
    low = _number(raw["min"], f"{where}: min", "a number") if "min" in raw else None
    high = _number(raw["max"], f"{where}: max", "a number") if "max" in raw else None
    alpha = _alpha(raw["alpha"], where) if "alpha" in raw else None
    return Threshold(metric, low, high, _min_samples(raw, where), alpha)


def _non_inferiority(raw: Mapping[str, Any], metrics: Mapping[str, Direction], where: str) -> NonInferiority:
    metric = _metric(raw, metrics, where)
    if "margin" not in raw:
        raise InvalidSpec(f"{where}: margin is required (a fraction of the baseline mean, 0.02 for 2 %)")
    margin = _number(raw["margin"], f"{where}: margin", "a fraction such as 0.02")
    if not 0 < margin < 1:
        raise InvalidSpec(
            f"{where}: margin must be a fraction above 0 and below 1 (0.02 for 2 %), not {margin:g}"
        )
    alpha = _alpha(raw.get("alpha", DEFAULT_ALPHA), where)
    return NonInferiority(metric, margin, alpha, _min_samples(raw, where))


def _incidents(raw: Mapping[str, Any], metrics: Mapping[str, Direction], where: str) -> Incidents:
    severity = raw.get("severity", ["P0"])
    if isinstance(severity, str):
        severity = [severity]
    if (
        not isinstance(severity, Sequence)
        or not severity
        or any(s not in SEVERITIES for s in severity)
        or len(set(severity)) != len(severity)
    ):
        raise InvalidSpec(f"{where}: severity must list distinct severities among {', '.join(SEVERITIES)}")
    limit = raw.get("max", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidSpec(f"{where}: max must be a whole number ≥ 0, not {limit!r}")
    return Incidents(tuple(sorted(severity)), limit)


def _cost_ratio(raw: Mapping[str, Any], metrics: Mapping[str, Direction], where: str) -> CostRatio:
    metric = _metric(raw, metrics, where)
    if "max" not in raw:
        raise InvalidSpec(f"{where}: max is required (the highest candidate/baseline ratio, 1.10 for 110 %)")
    limit = _number(raw["max"], f"{where}: max", "a ratio such as 1.10")
    if limit <= 0:
        raise InvalidSpec(f"{where}: max must be a ratio above 0 (1.10 for 110 % of baseline), not {limit:g}")
    return CostRatio(metric, limit, _alpha(raw.get("alpha", DEFAULT_ALPHA), where), _min_samples(raw, where))


def _stable(raw: Mapping[str, Any], metrics: Mapping[str, Direction], where: str) -> Stable:
    if "tolerance" not in raw:
        raise InvalidSpec(f"{where}: tolerance is required (a fraction of the baseline mean, 0.02 for 2 %)")
    tolerance = _number(raw["tolerance"], f"{where}: tolerance", "a fraction such as 0.02")
    if not 0 < tolerance < 1:
        raise InvalidSpec(f"{where}: tolerance must be a fraction above 0 and below 1, not {tolerance:g}")
    chosen: tuple[str, ...] | None = None
    if "metrics" in raw:
        listed = raw["metrics"]
        if not isinstance(listed, Sequence) or isinstance(listed, str) or not listed:
            raise InvalidSpec(f"{where}: metrics must be a non-empty list of declared metrics")
        for m in listed:
            _declared(m, metrics, where)
        chosen = tuple(dict.fromkeys(listed))
    two_sided = raw.get("two_sided", False)
    if not isinstance(two_sided, bool):
        raise InvalidSpec(f"{where}: two_sided must be true or false")
    return Stable(tolerance, chosen, _min_samples(raw, where), two_sided)


def _checklist(raw: Mapping[str, Any], metrics: Mapping[str, Direction], where: str) -> Checklist:
    items = raw.get("items")
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise InvalidSpec(f"{where}: items must be a non-empty list of names such as rollback-tested")
    for item in items:
        _slug(item, f"{where}: item")
    if len(set(items)) != len(items):
        raise InvalidSpec(f"{where}: items must be distinct")
    return Checklist(tuple(items))


_Parser = Callable[[Mapping[str, Any], Mapping[str, Direction], str], Criterion]
_CRITERIA: Mapping[CriterionKind, tuple[tuple[str, ...], _Parser]] = {
    CriterionKind.THRESHOLD: (("metric", "min", "max", "min_samples", "alpha"), _threshold),
    CriterionKind.NON_INFERIORITY: (("metric", "margin", "alpha", "min_samples"), _non_inferiority),
    CriterionKind.INCIDENTS: (("severity", "max"), _incidents),
    CriterionKind.COST_RATIO: (("metric", "max", "alpha", "min_samples"), _cost_ratio),
    CriterionKind.STABLE: (("tolerance", "metrics", "min_samples", "two_sided"), _stable),
    CriterionKind.CHECKLIST: (("items",), _checklist),
}


# --- small validators ----------------------------------------------------------------------------


def _known(raw: Mapping[str, Any], accepted: Sequence[str], where: str, hint: str = "") -> None:
    unknown = sorted(str(k) for k in raw if k not in accepted)
    if unknown:
        raise InvalidSpec(
            f"{where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}"
            + (f" ({hint})" if hint else "")
        )


def _slug(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value) or len(value) > 100:
        raise InvalidSpec(
            f"{where} {value!r} is not valid; expected a slug such as canary-micro ([a-z0-9][a-z0-9._-]*)"
        )
    return value


def _number(value: Any, where: str, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidSpec(f"{where} must be {expected}, not {value!r}")
    return float(value)


def _duration(value: Any, where: str) -> timedelta:
    message = f"{where} {value!r} is not a duration; expected a number and a unit s, m, h, d or w (3d)"
    if not isinstance(value, str):
        raise InvalidSpec(message)
    try:
        return parse_duration(value)
    except InvalidInput:
        raise InvalidSpec(message) from None


def _alpha(value: Any, where: str) -> float:
    alpha = _number(value, f"{where}: alpha", "a significance level such as 0.05")
    if not 0 < alpha < 0.5:
        raise InvalidSpec(f"{where}: alpha must be above 0 and below 0.5 (0.05 is usual), not {alpha:g}")
    return alpha


def _min_samples(raw: Mapping[str, Any], where: str) -> int:
    value = raw.get("min_samples", DEFAULT_MIN_SAMPLES)
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise InvalidSpec(f"{where}: min_samples must be a whole number ≥ 2, not {value!r}")
    return value


def _metrics(raw: Any, where: str) -> dict[str, Direction]:
    accepted = ", ".join(d.value for d in Direction)
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidSpec(
            f"{where}: metrics must map each metric name to its direction ({accepted}), "
            "for example {quality: higher, cost: lower}"
        )
    out: dict[str, Direction] = {}
    for name, direction in raw.items():
        if not isinstance(name, str) or not _METRIC.match(name):
            raise InvalidSpec(f"{where}: metric name {name!r} is not valid; use letters, digits and _ . -")
        try:
            out[name] = Direction(direction)
        except ValueError:
            raise InvalidSpec(
                f"{where}: metric {name} has direction {direction!r}; accepted: {accepted}"
            ) from None
    return out


def _approval(raw: Any, where: str) -> frozenset[Bump]:
    levels = {b.word: b for b in Bump}
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{where}: approval must be a mapping such as {{major: required}}")
    required: set[Bump] = set()
    for key, value in raw.items():
        if key not in levels:
            raise InvalidSpec(f"{where}: approval key {key!r} is unknown; accepted: major, minor, patch")
        if value not in _APPROVAL_VALUES:
            raise InvalidSpec(f"{where}: approval.{key} is {value!r}; accepted: required, none")
        if value == "required":
            required.add(levels[key])
    smallest = min(required, default=None)
    if smallest is not None:
        for bump in Bump:
            if bump > smallest and raw.get(bump.word) == "none":
                raise InvalidSpec(
                    f"{where}: approval requires {smallest.word} changes but not {bump.word} ones; a larger "
                    f"change needs at least the approval a smaller one does (drop `{bump.word}: none`)"
                )
        required.update(b for b in Bump if b > smallest)
    return frozenset(required)


def _metric(raw: Mapping[str, Any], metrics: Mapping[str, Direction], where: str) -> str:
    if "metric" not in raw:
        raise InvalidSpec(f"{where}: metric is required; declared metrics: {', '.join(metrics)}")
    return _declared(raw["metric"], metrics, where)


def _declared(name: Any, metrics: Mapping[str, Direction], where: str) -> str:
    if name not in metrics:
        raise InvalidSpec(
            f"{where}: metric {name!r} is not declared in the policy's metrics; declared: "
            + ", ".join(metrics)
        )
    return str(name)

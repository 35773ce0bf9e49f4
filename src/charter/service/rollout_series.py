"""A rollout's gated metrics over time, candidate against baseline: what the rollout page charts.

The window (from the minute the rollout started in to its end, or now) is cut into at most
`BUCKETS` equal buckets of whole minutes; COUNT, SUM and SUM of squares per arm, metric and bucket
come from the sums kept at write time (`txn_moments`, never the records), so a chart costs the same
however many transactions were recorded. The candidate's series is
its `shadow` records during a shadow stage and its `candidate` records after, as the gate judges it.

Each bucket also carries the bound the stage it falls in draws for that metric (`bound_for`): for a
non-inferiority criterion the lowest candidate mean that is not worse than the concurrent baseline
by more than the margin, (1 − margin) × baseline (× (1 + margin) when lower is better); a threshold
criterion's fixed minimum or maximum; a cost ratio's maximum × baseline; a stability tolerance.
The gate itself judges the whole stage with a one-sided test (`charter.domain.gate`); the chart
shows the same rule per bucket, for the eye.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from charter.domain.criteria import CostRatio, Criterion, NonInferiority, Stable, Threshold
from charter.domain.rollout import Rollout
from charter.domain.routing import Arm
from charter.domain.tracks import Direction, Stage
from charter.stats.moments import Moments
from charter.storage.rollouts import RolloutRecord
from charter.storage.store import Tx

BUCKETS = 48
MIN_BUCKET = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Bound:
    value: float
    kind: str  # the criterion kind that draws it
    label: str  # the criterion, as a person reads it


@dataclass(frozen=True)
class Point:
    start: datetime
    end: datetime
    stage: str
    baseline: Moments | None
    candidate: Moments | None
    bound: Bound | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "stage": self.stage,
            "baseline": None if self.baseline is None else self.baseline.as_dict(),
            "candidate": None if self.candidate is None else self.candidate.as_dict(),
            "bound": None if self.bound is None else self.bound.__dict__,
        }


@dataclass(frozen=True)
class MetricSeries:
    metric: str
    direction: str  # higher | lower
    points: tuple[Point, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "points": [p.as_dict() for p in self.points],
        }


@dataclass(frozen=True)
class StageSpan:
    stage: str
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "from": self.start.isoformat(), "to": self.end.isoformat()}


@dataclass(frozen=True)
class RolloutSeries:
    slot: str
    rollout: str
    start: datetime
    end: datetime
    bucket_seconds: float
    stages: tuple[StageSpan, ...]
    metrics: tuple[MetricSeries, ...]
    policy: Mapping[str, Any]  # the track policy the rollout pinned

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "rollout": self.rollout,
            "policy": dict(self.policy),
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "bucket_seconds": self.bucket_seconds,
            "stages": [s.as_dict() for s in self.stages],
            "metrics": [m.as_dict() for m in self.metrics],
        }


def gated_metrics(rollout: Rollout) -> list[str]:
    """The metrics some criterion of the pinned policy judges, in the policy's order."""
    named: set[str] = set()
    for stage in rollout.policy.stages:
        for criterion in stage.criteria:
            if isinstance(criterion, Threshold | NonInferiority | CostRatio):
                named.add(criterion.metric)
            elif isinstance(criterion, Stable):
                named.update(criterion.metrics or rollout.policy.metrics)
    return [m for m in rollout.policy.metrics if m in named]


def bound_for(
    criteria: tuple[Criterion, ...], metric: str, direction: Direction, baseline: float | None
) -> Bound | None:
    """The bound the first criterion about `metric` draws (None when it needs a baseline mean and
    there is none, or no criterion is about `metric`)."""
    higher = direction.higher_is_better
    for c in criteria:
        if isinstance(c, Threshold) and c.metric == metric:
            return Bound(float(c.min if c.min is not None else c.max or 0.0), c.kind.value, c.label)
        if baseline is None:
            continue
        if isinstance(c, NonInferiority) and c.metric == metric:
            factor = 1 - c.margin if higher else 1 + c.margin
            return Bound(baseline * factor, c.kind.value, c.label)
        if isinstance(c, CostRatio) and c.metric == metric:
            return Bound(baseline * c.max, c.kind.value, c.label)
        if isinstance(c, Stable) and metric in (c.metrics or (metric,)):
            factor = 1 - c.tolerance if higher else 1 + c.tolerance
            return Bound(baseline * factor, c.kind.value, c.label)
    return None


def stage_spans(record: RolloutRecord, tx: Tx, end: datetime) -> list[StageSpan]:
    """When each stage began and ended, from the stored transitions."""
    starts: list[tuple[str, datetime]] = []
    for t in tx.rollouts.transitions(record.id):
        if not starts or starts[-1][0] != t.stage:
            starts.append((t.stage, t.at))
    spans = []
    for i, (stage, start) in enumerate(starts):
        stop = starts[i + 1][1] if i + 1 < len(starts) else end
        spans.append(StageSpan(stage, start, max(stop, start)))
    return spans


def metric_series(tx: Tx, record: RolloutRecord, rollout: Rollout, now: datetime) -> RolloutSeries:
    """Every gated metric of the rollout, bucketed over its whole window (see the module docstring)."""
    end = max(rollout.ended_at or now, rollout.started_at + MIN_BUCKET)
    # whole minutes, or whole hours from a whole hour once buckets are longer than an hour
    unit = HOUR if end - rollout.started_at > BUCKETS * HOUR else MIN_BUCKET
    start = _round_down(rollout.started_at, unit)
    width = max(-(-(end - start) // (BUCKETS * unit)) * unit, unit)
    metrics = gated_metrics(rollout)
    data = tx.transactions.bucket_moments(
        rollout_id=record.id,
        arms=[a.value for a in Arm],
        start=start,
        end=end,
        metrics=metrics,
        width_seconds=width.total_seconds(),
    )
    spans = stage_spans(record, tx, end)
    stages: Mapping[str, Stage] = {s.name: s for s in rollout.policy.stages}
    count = max(int((end - start) / width) + 1, 1)
    series = []
    for metric in metrics:
        direction = rollout.policy.metrics[metric]
        points = []
        for bucket in range(count):
            lo = start + bucket * width
            if lo > end:
                break
            hi = min(lo + width, end)
            span = _span_at(spans, lo + (hi - lo) / 2)
            baseline = data[Arm.BASELINE.value].get(metric, {}).get(bucket)
            candidate = _merge(
                data[Arm.CANDIDATE.value].get(metric, {}).get(bucket),
                data[Arm.SHADOW.value].get(metric, {}).get(bucket),
            )
            if baseline is None and candidate is None:
                continue
            stage = stages.get(span.stage) if span is not None else None
            bound = None
            if stage is not None:
                bound = bound_for(
                    stage.criteria, metric, direction, None if baseline is None else baseline.mean
                )
            points.append(Point(lo, hi, "" if span is None else span.stage, baseline, candidate, bound))
        series.append(MetricSeries(metric, direction.value, tuple(points)))
    return RolloutSeries(
        record.slot,
        record.id,
        start,
        end,
        width.total_seconds(),
        tuple(spans),
        tuple(series),
        rollout.policy.as_dict(),
    )


def _round_down(when: datetime, unit: timedelta) -> datetime:
    """`when` rounded down to its minute or hour: buckets on whole minutes and hours are read from
    the sums kept at write time, never from the records."""
    if unit == HOUR:
        return when.replace(minute=0, second=0, microsecond=0)
    return when.replace(second=0, microsecond=0)


def _span_at(spans: list[StageSpan], when: datetime) -> StageSpan | None:
    found = None
    for span in spans:
        if span.start <= when:
            found = span
    return found


def _merge(a: Moments | None, b: Moments | None) -> Moments | None:
    if a is None or b is None:
        return a or b
    return a.merge(b)

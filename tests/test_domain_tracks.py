"""Track policies: the built-in default, the file format, and every refusal naming what is accepted."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.domain.criteria import Checklist, CostRatio, Incidents, NonInferiority, Stable, Threshold
from charter.domain.semver import Bump
from charter.domain.tracks import (
    DEFAULT_TRACK_POLICY,
    DEFAULT_TRACK_POLICY_YAML,
    Direction,
    default_track_policy,
    format_duration,
    parse_track_policy,
    track_policies,
    validate_tracks_section,
)
from charter.errors import InvalidInput, InvalidSpec


def _default() -> dict[str, Any]:
    return copy.deepcopy(dict(DEFAULT_TRACK_POLICY))


def test_the_built_in_default_is_the_yaml_of_the_issue() -> None:
    assert yaml.safe_load(DEFAULT_TRACK_POLICY_YAML) == DEFAULT_TRACK_POLICY


def test_the_default_is_the_seeds_table() -> None:
    policy = default_track_policy()
    assert [(s.name, s.traffic) for s in policy.stages] == [
        ("shadow", 0),
        ("canary-micro", 5),
        ("canary-small", 20),
        ("canary-half", 50),
        ("production", 100),
    ]
    shadow, micro, small, half, production = policy.stages
    assert (shadow.min_duration, shadow.max_duration) == (timedelta(days=3), timedelta(days=7))
    assert (micro.min_duration, micro.max_duration) == (timedelta(days=2), timedelta(days=3))
    assert shadow.criteria == (
        Threshold("format_ok", min=0.99, min_samples=500),
        Incidents(("P0", "P1"), 0),
    )
    assert micro.criteria[0] == NonInferiority("quality", 0.02, 0.05, 400)
    assert small.criteria == (NonInferiority("quality", 0.01, 0.05, 1000), CostRatio("cost", 1.10))
    assert half.criteria == (Stable(0.02), Checklist(("rollback-tested", "oncall-briefed")))
    assert production.is_production and policy.rollback_window == timedelta(days=30)
    assert policy.metrics == {
        "quality": Direction.HIGHER,
        "format_ok": Direction.HIGHER,
        "cost": Direction.LOWER,
    }
    assert policy.shadow_sample == 1.0
    assert policy.first_live_index == 1
    assert policy.checklist_items == ("rollback-tested", "oncall-briefed")


def test_a_policy_round_trips_through_its_file_shape() -> None:
    policy = default_track_policy()
    again = parse_track_policy(yaml.safe_load(yaml.safe_dump(policy.as_dict())))
    assert again == policy
    assert again.digest() == policy.digest()


def test_the_digest_changes_with_the_policy() -> None:
    changed = _default()
    changed["stages"][1]["traffic"] = 10
    assert parse_track_policy(changed).digest() != default_track_policy().digest()


@pytest.mark.parametrize(
    ("change", "needs"),
    [(None, False), (Bump.PATCH, False), (Bump.MINOR, False), (Bump.MAJOR, True)],
)
def test_approval_is_required_for_a_major_model_change(change: Bump | None, needs: bool) -> None:
    assert default_track_policy().needs_approval(change) is needs


def test_requiring_approval_for_minor_changes_covers_major_ones_too() -> None:
    data = {**_default(), "approval": {"minor": "required"}}
    policy = parse_track_policy(data)
    assert policy.needs_approval(Bump.MAJOR) and policy.needs_approval(Bump.MINOR)
    assert not policy.needs_approval(Bump.PATCH)
    assert not parse_track_policy({**_default(), "approval": {"major": "none"}}).needs_approval(Bump.MAJOR)


def _broken(path: str, value: Any) -> dict[str, Any]:
    data = _default()
    target: Any = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("name", "Default Policy", "slug"),
        ("colour", "blue", "unknown key.*accepted: name, approval"),
        ("metrics", {}, "metrics must map"),
        ("metrics.quality", "up", "accepted: higher, lower"),
        ("approval", {"huge": "required"}, "accepted: major, minor, patch"),
        ("approval", {"major": "maybe"}, "accepted: required, none"),
        ("approval", {"minor": "required", "major": "none"}, "larger change"),
        ("shadow_sample", 0, "above 0 and at most 1"),
        ("shadow_sample", "all", "a share between 0 and 1"),
        ("stages", [], "at least two stages"),
        ("stages.1.traffic", 150, "from 0 to 100"),
        ("stages.1.traffic", 5.555, "two decimals"),
        ("stages.1.traffic", 100, "only the last stage"),
        ("stages.2.traffic", 1, "never decrease"),
        ("stages.4.traffic", 90, "must have traffic 100"),
        ("stages.4.min_duration", "1d", "unknown key.*production has no durations"),
        ("stages.1.rollback_window", "1d", "rollback_window belongs to the production stage"),
        ("stages.1.min_duration", "2 days", "not a duration.*3d"),
        ("stages.1.min_duration", 2, "not a duration"),
        ("stages.1.max_duration", _DELETE, "max_duration is required"),
        ("stages.1.min_duration", "4d", "min_duration ≤ max_duration"),
        ("stages.1.name", "shadow", "unique; repeated: shadow"),
        ("stages.1.criteria.0.kind", "vibes", "unknown kind 'vibes'; accepted: threshold, non_inferiority"),
        ("stages.1.criteria.0.metric", "latency", "not declared.*declared: quality, format_ok, cost"),
        ("stages.1.criteria.0.margin", 2, "0.02 for 2 %"),
        ("stages.1.criteria.0.margin", _DELETE, "margin is required"),
        ("stages.1.criteria.0.alpha", 0.7, "below 0.5"),
        ("stages.1.criteria.0.min_samples", 1, "≥ 2"),
        ("stages.1.criteria.0.marign", 0.02, "unknown key.*marign.*accepted: kind, metric, margin"),
        ("stages.0.criteria.0.max", 0.5, "exactly one of min"),
        ("stages.0.criteria.1.severity", ["P5"], "among P0, P1, P2, P3"),
        ("stages.0.criteria.1.max", -1, "whole number ≥ 0"),
        ("stages.2.criteria.1.max", 0, "ratio above 0"),
        ("stages.3.criteria.0.tolerance", 0, "above 0 and below 1"),
        ("stages.3.criteria.0.metrics", ["latency"], "not declared"),
        ("stages.3.criteria.1.items", [], "non-empty list"),
        ("stages.3.criteria.1.items", ["Rollback Tested"], "slug"),
    ],
)
def test_a_bad_policy_is_refused_saying_what_would_be_accepted(path: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        parse_track_policy(_broken(path, value))


def test_refusals_name_the_stage_and_criterion() -> None:
    with pytest.raises(InvalidSpec, match=r"track policy 'default', stage 2 \(canary-micro\), criterion 1 "):
        parse_track_policy(_broken("stages.1.criteria.0.margin", 5))


def test_a_policy_without_shadow_and_with_fractional_traffic_is_fine() -> None:
    policy = parse_track_policy(
        {
            "name": "fast",
            "approval": {},
            "metrics": {"quality": "higher"},
            "stages": [
                {"name": "pilot", "traffic": 0.5, "min_duration": "1h", "max_duration": "1d"},
                {"name": "production", "traffic": 100},
            ],
        }
    )
    assert policy.first_live_index == 0
    assert policy.stages[0].buckets == 50
    assert policy.rollback_window == timedelta(days=30)
    assert not policy.needs_approval(Bump.MAJOR)


def test_stage_lookup_names_the_stages() -> None:
    policy = default_track_policy()
    assert policy.stage("canary-small").traffic == 20
    with pytest.raises(InvalidInput, match="its stages are: shadow, canary-micro"):
        policy.stage("canary-huge")


def test_the_tracks_section_holds_named_policies() -> None:
    section = validate_tracks_section({"careful": {**_default(), "name": "careful"}, "default": _default()})
    assert set(section) == {"careful", "default"}
    policies = track_policies({"careful": section["careful"]})
    assert set(policies) == {"default", "careful"}
    assert policies["careful"].name == "careful"
    with pytest.raises(InvalidSpec, match="must match its key"):
        validate_tracks_section({"careful": _default()})


@settings(deadline=None)  # no test here may depend on timing
@given(st.integers(min_value=0, max_value=10**7))
def test_durations_format_back_to_the_same_duration(seconds: int) -> None:
    from charter.domain.times import parse_duration

    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)

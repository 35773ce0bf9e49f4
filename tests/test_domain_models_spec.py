"""Model specs and the semantic-versioning rules, as pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from charter.domain.modelspec import (
    ModelSpec,
    Training,
    Weights,
    check_new_version,
    classify,
    parse_spec,
    required_bump,
    spec_changes,
)
from charter.domain.semver import Bump, Version
from charter.errors import BumpTooSmall, IdenticalSpec, InvalidSpec, VersionRefused

DIGESTS = ["sha256:" + c * 64 for c in "abcd"]
NON_SERVING_FIELDS = (
    "family",
    "architecture",
    "parameter_count",
    "weights",
    "provider",
    "provider_model",
    "training",
)

servings = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.sampled_from([0.0, 0.2, 0.7, 1]),
        "max_tokens": st.sampled_from([256, 512, 4096]),
        "top_p": st.sampled_from([0.9, 1.0]),
        "stop": st.lists(st.sampled_from(["\n", "###"]), max_size=2),
    },
)
trainings = st.builds(
    Training,
    datasets=st.lists(st.sampled_from(["tickets@1", "tickets@2", "chats@3"]), unique=True, max_size=2).map(
        lambda xs: tuple(sorted(xs))
    ),
    date=st.sampled_from([None, "2025-06-01", "2025-09-30"]),
    sources=st.just(()),
    base_model=st.sampled_from([None, "llama-3-8b@1.0.0"]),
)
hosted = st.builds(
    ModelSpec,
    family=st.sampled_from(["llama-3", "mistral"]),
    architecture=st.sampled_from(["decoder-only", "moe"]),
    parameter_count=st.sampled_from([7_000_000_000, 8_000_000_000]),
    weights=st.sampled_from(DIGESTS).map(Weights),
    training=trainings,
    serving=servings,
)
provider = st.builds(
    ModelSpec,
    family=st.sampled_from(["gpt-4o", "claude"]),
    provider=st.sampled_from(["openai", "anthropic"]),
    provider_model=st.sampled_from(["gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "claude-sonnet-4-5-20250929"]),
    serving=servings,
)
specs = st.one_of(hosted, provider)
versions = st.builds(Version, st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))


def hosted_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "family": "llama-3",
        "architecture": "decoder-only transformer",
        "parameter_count": 8_000_000_000,
        "weights": {"digest": DIGESTS[0], "size": 16},
        "training": {"datasets": ["tickets@2"], "date": "2025-06-01"},
        "serving": {"temperature": 0.2, "max_tokens": 512},
    }
    doc.update(overrides)
    return doc


# --- bump classification ------------------------------------------------------------------------


@given(old=specs, new=specs)
def test_a_serving_only_change_never_needs_more_than_a_patch(old: ModelSpec, new: ModelSpec) -> None:
    new = replace(new, **{f: getattr(old, f) for f in NON_SERVING_FIELDS})
    assert required_bump(old, new) in (None, Bump.PATCH)


@given(old=specs, new=specs)
def test_nothing_changed_is_the_only_way_to_need_no_bump(old: ModelSpec, new: ModelSpec) -> None:
    assert (required_bump(old, new) is None) == (old == new) == (old.digest == new.digest)


@given(old=specs, new=specs)
def test_family_architecture_or_provider_changes_need_a_major(old: ModelSpec, new: ModelSpec) -> None:
    if (old.family, old.architecture, old.provider) != (new.family, new.architecture, new.provider):
        assert required_bump(old, new) is Bump.MAJOR
    else:
        assert required_bump(old, new) in (None, Bump.PATCH, Bump.MINOR)


@given(old=hosted, new=hosted)
def test_weights_training_or_size_changes_need_at_least_a_minor(old: ModelSpec, new: ModelSpec) -> None:
    new = replace(new, family=old.family, architecture=old.architecture)
    changed = (old.weights, old.training, old.parameter_count) != (
        new.weights,
        new.training,
        new.parameter_count,
    )
    assume(changed)
    assert required_bump(old, new) is Bump.MINOR


def test_a_new_provider_snapshot_needs_a_minor_and_says_so() -> None:
    old = ModelSpec("gpt-4o", provider="openai", provider_model="gpt-4o-2024-08-06")
    change = classify(old, replace(old, provider_model="gpt-4o-2024-11-20"))
    assert change is not None and change.bump is Bump.MINOR
    assert change.reason == "provider snapshot changed (gpt-4o-2024-08-06 → gpt-4o-2024-11-20)"


def test_changes_are_reported_per_leaf() -> None:
    old, _ = parse_spec(hosted_doc())
    new, _ = parse_spec(hosted_doc(serving={"temperature": 0.3, "max_tokens": 512}))
    assert [c.as_dict() for c in spec_changes(old, new)] == [
        {"field": "serving.temperature", "old": 0.2, "new": 0.3}
    ]


def test_booleans_and_numbers_are_different_serving_values() -> None:
    a = ModelSpec("x", provider="p", provider_model="x-001", serving={"flag": True})
    b = replace(a, serving={"flag": 1})
    assert a != b and required_bump(a, b) is Bump.PATCH


# --- parsing ------------------------------------------------------------------------------------


@given(spec=specs)
def test_the_canonical_form_parses_back_to_the_same_spec(spec: ModelSpec) -> None:
    again, extras = parse_spec(spec.canonical())
    assert again == spec and again.digest == spec.digest
    assert extras.primary_metrics is None


def test_extras_live_outside_the_digest() -> None:
    plain, _ = parse_spec(hosted_doc())
    tagged, extras = parse_spec(
        hosted_doc(description="support bot", tags=["prod", "eu"], primary_metrics={"acc": "higher"})
    )
    assert plain.digest == tagged.digest
    assert extras.description == "support bot" and extras.tags == ("prod", "eu")
    assert dict(extras.primary_metrics or {}) == {"acc": "higher"}


def test_parsing_normalises_lists_dates_digests_and_sizes() -> None:
    spec, _ = parse_spec(
        hosted_doc(
            parameter_count="7B",
            weights={"digest": "A" * 64},
            training={
                "datasets": ["b@2", "a@1", "b@2"],
                "date": date(2025, 6, 1),
                "sources": ["s3://z", "s3://a"],
            },
        )
    )
    assert spec.parameter_count == 7_000_000_000
    assert spec.weights == Weights("sha256:" + "a" * 64)
    assert spec.training == Training(("a@1", "b@2"), "2025-06-01", ("s3://a", "s3://z"))


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        (hosted_doc(name="x"), "unknown key(s) in the model spec: name; accepted: family"),
        (hosted_doc(weights={"digest": DIGESTS[0], "uri2": "x"}), "unknown key(s) in weights: uri2"),
        (hosted_doc(weights={"path": "x"}), "as `weights: PATH`"),
        (hosted_doc(training={"dataset": ["a@1"]}), "accepted: datasets, date, sources, base_model"),
        ({"family": "x"}, "needs its source"),
        (hosted_doc(provider="openai", provider_model="gpt-4o-2024-08-06"), "not both"),
        ({"family": "gpt", "provider": "openai"}, "needs both `provider`"),
        (hosted_doc(architecture=None), "needs `architecture` and `parameter_count`"),
        (hosted_doc(weights={"size": 3}), "needs its `digest`"),
        (hosted_doc(weights={"digest": "md5:abc"}), "is not a digest"),
        (hosted_doc(weights="./model.bin"), "was not resolved"),
        (hosted_doc(parameter_count=-3), "not a positive whole number"),
        (hosted_doc(training={"datasets": ["tickets"]}), "must name an exact version, such as tickets@3"),
        (hosted_doc(training={"date": "June"}), "expected YYYY-MM-DD"),
        (hosted_doc(serving={"temperature": -1}), "serving.temperature must be a number ≥ 0"),
        (hosted_doc(serving={"max_tokens": 1.5}), "serving.max_tokens must be a whole number"),
        (hosted_doc(serving={"when": date(2025, 1, 1)}), "is not a JSON value"),
        (hosted_doc(primary_metrics={"acc": "up"}), "accepted: higher, lower"),
        ("family: x", "must be a mapping"),
    ],
)
def test_invalid_specs_say_what_is_wrong_and_what_is_accepted(doc: Any, says: str) -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse_spec(doc)
    assert says in str(refused.value)


# --- new versions -------------------------------------------------------------------------------


def _history(specs_by_version: list[tuple[Version, ModelSpec]]) -> list[tuple[Version, ModelSpec]]:
    """Existing versions with pairwise different specs (each gets its own serving `seed`)."""
    return [(v, replace(s, serving={**s.serving, "seed": i})) for i, (v, s) in enumerate(specs_by_version)]


@given(
    existing=st.lists(st.tuples(versions, specs), max_size=6, unique_by=lambda p: p[0]).map(_history),
    new=specs,
    requested=st.none() | versions,
)
def test_an_accepted_version_is_above_every_version_of_its_major_line(
    existing: list[tuple[Version, ModelSpec]], new: ModelSpec, requested: Version | None
) -> None:
    try:
        assigned = check_new_version(existing, new, requested)
    except VersionRefused:
        assert requested is not None  # only a requested version can be refused (specs all differ)
        return
    if requested is not None:
        assert assigned == requested
    taken = [v for v, _ in existing]
    line = [(v, s) for v, s in existing if v.major == assigned.major]
    assert all(assigned > v for v, _ in line)
    if requested is None:
        assert all(assigned > v for v in taken) and (taken or assigned == Version(1, 0, 0))
    if line:
        base, base_spec = max(line, key=lambda p: p[0])
        needed = required_bump(base_spec, new)
        step = base.bump_to(assigned)
        assert needed is not None and step is not None and step >= needed
    elif taken:
        assert assigned.major > max(taken).major


@given(
    existing=st.lists(st.tuples(versions, specs), min_size=1, max_size=6, unique_by=lambda p: p[0]).map(
        _history
    ),
    data=st.data(),
)
def test_a_spec_identical_to_any_version_is_refused(
    existing: list[tuple[Version, ModelSpec]], data: Any
) -> None:
    _, again = data.draw(st.sampled_from(existing))
    with pytest.raises(IdenticalSpec):
        check_new_version(existing, again, data.draw(st.none() | versions), name="m")


def test_the_first_version_is_1_0_0_unless_asked_otherwise() -> None:
    spec, _ = parse_spec(hosted_doc())
    assert check_new_version([], spec, None) == Version(1, 0, 0)
    assert check_new_version([], spec, Version(0, 3, 0)) == Version(0, 3, 0)


def test_the_next_version_is_assigned_from_the_change() -> None:
    base, _ = parse_spec(hosted_doc())
    existing = [(Version(1, 2, 0), base)]
    serving, _ = parse_spec(hosted_doc(serving={"temperature": 0.1}))
    weights, _ = parse_spec(hosted_doc(weights={"digest": DIGESTS[1]}))
    family, _ = parse_spec(hosted_doc(family="mistral"))
    assert check_new_version(existing, serving, None) == Version(1, 2, 1)
    assert check_new_version(existing, weights, None) == Version(1, 3, 0)
    assert check_new_version(existing, family, None) == Version(2, 0, 0)


def test_a_too_small_bump_is_refused_with_the_reason_and_the_smallest_acceptable_version() -> None:
    base, _ = parse_spec(hosted_doc())
    weights, _ = parse_spec(hosted_doc(weights={"digest": DIGESTS[1], "size": 16}))
    with pytest.raises(BumpTooSmall) as refused:
        check_new_version([(Version(1, 2, 0), base)], weights, Version(1, 2, 1), name="m")
    assert refused.value.details["needed"] == "1.3.0"
    assert str(refused.value) == (
        "m@1.2.1: weights changed (digest) since m@1.2.0, which needs a minor version; "
        "the next version must be at least 1.3.0"
    )


def test_a_fix_to_an_older_major_line_is_judged_against_that_line() -> None:
    one, _ = parse_spec(hosted_doc())
    two, _ = parse_spec(hosted_doc(family="mistral"))
    existing = [
        (Version(1, 0, 0), one),
        (Version(1, 1, 0), replace(one, serving={"temperature": 0.5})),
        (Version(2, 0, 0), two),
    ]
    fix, _ = parse_spec(hosted_doc(serving={"temperature": 0.9}))
    assert check_new_version(existing, fix, Version(1, 1, 1)) == Version(1, 1, 1)
    with pytest.raises(VersionRefused, match=r"not above m@1\.1\.0, the highest 1\.x version"):
        check_new_version(existing, fix, Version(1, 0, 1), name="m")
    with pytest.raises(BumpTooSmall, match=r"at least 3\.0\.0"):
        check_new_version(existing, replace(two, serving={"x": 1}), Version(1, 2, 0), name="m")


def test_a_new_major_line_must_be_above_every_version() -> None:
    one, _ = parse_spec(hosted_doc())
    three, _ = parse_spec(hosted_doc(family="qwen"))
    new, _ = parse_spec(hosted_doc(family="mistral"))
    existing = [(Version(1, 0, 0), one), (Version(3, 0, 0), three)]
    with pytest.raises(VersionRefused, match=r"use 4\.0\.0"):
        check_new_version(existing, new, Version(2, 0, 0), name="m")
    assert check_new_version(existing, new, Version(4, 0, 0)) == Version(4, 0, 0)

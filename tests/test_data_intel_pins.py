"""Results pinned before the single-pass, multi-threaded rewrite of profiles, fingerprints, drift
and MinHash: fingerprints are stored, so they must stay bit-identical; profiles, drift numbers and
near-duplicate pairs must match within float tolerance (see tests/intel_pins.py for the inputs)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.intel_pins import PINS, compute


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compute(Path(tmp_path_factory.mktemp("pins")))


@pytest.fixture(scope="module")
def pinned() -> dict[str, Any]:
    return dict(json.loads(PINS.read_text()))


def _same(actual: Any, expected: Any, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), where
        for key in expected:
            _same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list | tuple) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _same(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(actual, bool):
        assert isinstance(actual, int | float), where
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {actual} != {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_fingerprints_are_bit_identical(results: dict[str, Any], pinned: dict[str, Any]) -> None:
    assert results["fingerprints"] == pinned["fingerprints"]


@pytest.mark.parametrize("name", ["profile_mixed", "profile_train", "profile_batches"])
def test_profiles_keep_their_shape_and_values(
    results: dict[str, Any], pinned: dict[str, Any], name: str
) -> None:
    _same(json.loads(json.dumps(results[name])), pinned[name], name)


def test_drift_numbers_match(results: dict[str, Any], pinned: dict[str, Any]) -> None:
    _same(json.loads(json.dumps(results["drift"])), pinned["drift"], "drift")
    assert pinned["drift"]["drifted"] == ["amount", "city", "note"]


def test_near_duplicate_pairs_match(results: dict[str, Any], pinned: dict[str, Any]) -> None:
    _same(json.loads(json.dumps(results["near"])), pinned["near"], "near")

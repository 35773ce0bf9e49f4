"""Routing: the bucket rule, its uniformity, monotonicity across stages and stability across processes."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.domain.routing import (
    BUCKETS,
    Arm,
    RoutingTable,
    bucket,
    route,
    route_bucket,
)

SLOT, SALT = "support-agent", "r-0192"

# The exact buckets are part of the contract: every process, every SDK, every release of charter
# must send these keys to the same place.
PINNED = {"user-1": 4758, "user-42": 644, "alice@example.com": 3715, "": 1810, "ключ-ü": 8259}


def _table(traffic: float = 0.0, shadow_sample: float = 0.0, *, version: int = 3) -> RoutingTable:
    return RoutingTable(
        slot=SLOT,
        version=version,
        production="rel-prod",
        candidate="rel-cand",
        rollout="r-0192",
        stage="canary",
        traffic=traffic,
        shadow_sample=shadow_sample,
        salt=SALT,
    )


def test_the_bucket_is_xxh3_64_of_slot_salt_and_key_mod_10000() -> None:
    # the XXH3-64 reference vector for empty input, seed 0
    assert xxhash.xxh3_64_intdigest(b"") == 0x2D06800538D394C2
    raw = xxhash.xxh3_64_intdigest(f"{SLOT}\x1f{SALT}\x1fuser-1".encode())
    assert bucket(SLOT, SALT, "user-1") == raw % 10_000 == 4758


def test_pinned_buckets() -> None:
    assert {key: bucket(SLOT, SALT, key) for key in PINNED} == PINNED
    table = _table(20)
    assert {key: table.bucket(key) for key in PINNED} == PINNED


def test_buckets_are_the_same_in_another_process() -> None:
    code = (
        "import json, sys; from charter.domain.routing import bucket; "
        f"print(json.dumps({{k: bucket({SLOT!r}, {SALT!r}, k) for k in json.loads(sys.argv[1])}}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(PINNED))],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert json.loads(out.stdout) == PINNED


def test_candidate_iff_bucket_below_percent_times_100() -> None:
    table = _table(5)
    for key, b in PINNED.items():
        decision = route(table, key)
        if b < 500:
            assert (decision.arm, decision.release) == (Arm.CANDIDATE, "rel-cand")
        else:
            assert (decision.arm, decision.release) == (Arm.BASELINE, "rel-prod")
        assert decision.shadow is None


def test_bucketing_is_uniform_within_0_3_points_at_5_percent_over_a_million_keys() -> None:
    table = _table(5)
    counts = [0] * BUCKETS
    candidate = 0
    for i in range(1_000_000):
        b = table.bucket(f"user-{i}")
        counts[b] += 1
        candidate += b < 500
    share = candidate / 1_000_000 * 100
    assert abs(share - 5.0) <= 0.3
    # and over all 10,000 buckets: a chi-square statistic near its 9,999 degrees of freedom
    expected = 1_000_000 / BUCKETS
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert 9_999 - 6 * (2 * 9_999) ** 0.5 < chi2 < 9_999 + 6 * (2 * 9_999) ** 0.5


@settings(deadline=None)  # no test here may depend on timing
@given(
    key=st.text(max_size=40),
    salt=st.text(max_size=12),
    traffic=st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=5),
)
def test_a_key_in_the_candidate_stays_in_as_traffic_grows(key: str, salt: str, traffic: list[int]) -> None:
    arms = []
    for buckets in sorted(traffic):
        table = RoutingTable(SLOT, 1, "p", "c", "r", "s", traffic=buckets / 100, salt=salt)
        arms.append(route(table, key).arm)
    first_in = arms.index(Arm.CANDIDATE) if Arm.CANDIDATE in arms else len(arms)
    assert all(arm is Arm.CANDIDATE for arm in arms[first_in:])


@settings(deadline=None)  # no test here may depend on timing
@given(key=st.text(max_size=40))
def test_the_real_track_is_monotonic_5_20_50(key: str) -> None:
    arms = [route(_table(t), key).arm for t in (5, 20, 50, 100)]
    assert arms[3] is Arm.CANDIDATE
    for earlier, later in itertools.pairwise(arms):
        assert earlier is Arm.BASELINE or later is Arm.CANDIDATE


def test_shadow_serves_the_baseline_and_names_the_candidate_as_a_side_run() -> None:
    everyone = _table(0, 1.0)
    for key in PINNED:
        decision = route(everyone, key)
        assert (decision.release, decision.arm, decision.shadow) == ("rel-prod", Arm.BASELINE, "rel-cand")
    half = _table(0, 0.5)
    for key, b in PINNED.items():
        assert (route(half, key).shadow is not None) is (b < 5000)


def test_a_decision_carries_the_table_version_stage_and_the_stale_flag() -> None:
    table = _table(20, version=17)
    fresh, stale = route(table, "user-1"), route(table, "user-1", stale=True)
    assert (fresh.table_version, fresh.stage, fresh.rollout, fresh.stale) == (17, "canary", "r-0192", False)
    assert stale.stale and stale.release == fresh.release
    assert fresh.as_dict()["arm"] == ("candidate" if PINNED["user-1"] < 2000 else "baseline")


def test_without_a_rollout_everything_goes_to_production() -> None:
    table = RoutingTable.production_only(SLOT, 9, "rel-prod")
    for key in PINNED:
        decision = route(table, key)
        assert (decision.release, decision.arm, decision.shadow, decision.stage) == (
            "rel-prod",
            Arm.BASELINE,
            None,
            None,
        )


def test_keyless_requests_route_by_a_caller_drawn_bucket() -> None:
    table = _table(5)
    assert route_bucket(table, 499).arm is Arm.CANDIDATE
    assert route_bucket(table, 500).arm is Arm.BASELINE
    with pytest.raises(ValueError, match="between 0 and 9999"):
        route_bucket(table, 10_000)


def test_tables_round_trip_and_explain_their_arithmetic() -> None:
    table = _table(20)
    assert RoutingTable.from_dict(table.as_dict()) == table
    explained = table.explain("user-42")
    assert (explained["bucket"], explained["candidate_buckets"]) == (644, 2000)
    assert explained["decision"]["arm"] == "candidate"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"candidate": None, "traffic": 5.0},
        {"candidate": None, "shadow_sample": 1.0},
        {"candidate": "c", "traffic": 5.0, "shadow_sample": 1.0},
        {"candidate": "c", "traffic": 101.0},
    ],
)
def test_impossible_tables_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RoutingTable(SLOT, 1, "p", **kwargs)  # type: ignore[arg-type]

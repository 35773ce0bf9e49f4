"""The ledger's hash chain and canonical JSON, as pure rules."""

from __future__ import annotations

import dataclasses
import math
import struct
from datetime import UTC, datetime, timedelta

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from charter.domain.canonical import canonical_json
from charter.domain.ledger import GENESIS_HASH, AuditEvent, seal, verify_chain

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_canonical_json_matches_the_rfc8785_reference(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_every_finite_double_is_written_like_ecmascript(bits: int) -> None:
    (x,) = struct.unpack("<d", bits.to_bytes(8, "little"))
    if math.isfinite(x):
        assert canonical_json(x) == rfc8785.dumps(x)


def _chain(n: int) -> list[AuditEvent]:
    events, previous = [], GENESIS_HASH
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        event = seal(
            sequence=i,
            time=start + timedelta(seconds=i),
            actor=f"user{i % 3}",
            action="thing.changed",
            subject=f"model:m@1.0.{i}",
            payload={"i": i, "x": [i, "a"]},
            evidence={},
            previous_hash=previous,
        )
        events.append(event)
        previous = event.hash
    return events


def test_the_first_event_links_to_64_zeros() -> None:
    assert _chain(1)[0].previous_hash == "0" * 64


@given(st.integers(min_value=1, max_value=30))
def test_an_untouched_chain_verifies(n: int) -> None:
    result = verify_chain(_chain(n))
    assert result.ok and result.events == n


@given(st.data())
def test_any_edit_is_caught_at_the_edited_event(data: st.DataObject) -> None:
    events = _chain(data.draw(st.integers(min_value=1, max_value=20)))
    index = data.draw(st.integers(min_value=0, max_value=len(events) - 1))
    field = data.draw(st.sampled_from(["time", "actor", "action", "subject", "payload", "evidence"]))
    original = events[index]
    changed = {
        "time": original.time.replace("2026", "2025"),
        "actor": original.actor + "x",
        "action": "other.action",
        "subject": original.subject + "9",
        "payload": {**original.payload, "i": -1},
        "evidence": {"forged": True},
    }[field]
    events[index] = dataclasses.replace(original, **{field: changed})
    result = verify_chain(events)
    assert not result.ok
    assert result.first_bad == original.sequence


@given(st.data())
def test_any_deletion_in_the_middle_is_caught(data: st.DataObject) -> None:
    events = _chain(data.draw(st.integers(min_value=2, max_value=20)))
    index = data.draw(st.integers(min_value=0, max_value=len(events) - 2))
    del events[index]
    result = verify_chain(events)
    assert not result.ok
    assert result.first_bad == index + 1


@given(st.data())
def test_any_reordering_is_caught(data: st.DataObject) -> None:
    events = _chain(data.draw(st.integers(min_value=2, max_value=20)))
    i = data.draw(st.integers(min_value=0, max_value=len(events) - 2))
    j = data.draw(st.integers(min_value=i + 1, max_value=len(events) - 1))
    events[i], events[j] = events[j], events[i]
    result = verify_chain(events)
    assert not result.ok
    assert result.first_bad == i + 1


def test_rehashing_an_edited_event_still_breaks_the_next_link() -> None:
    events = _chain(5)
    forged = dataclasses.replace(events[1], actor="mallory")
    forged = seal(
        sequence=forged.sequence,
        time=datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC),
        actor="mallory",
        action=forged.action,
        subject=forged.subject,
        payload=forged.payload,
        evidence=forged.evidence,
        previous_hash=forged.previous_hash,
    )
    events[1] = forged
    result = verify_chain(events)
    assert not result.ok and result.first_bad == 3

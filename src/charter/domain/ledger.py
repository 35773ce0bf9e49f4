"""The audit ledger's hash chain: how an event is hashed and how a chain is verified."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from charter.domain.canonical import canonical_json

GENESIS_HASH = "0" * 64


def format_time(when: datetime) -> str:
    """The ledger's time format: UTC, microseconds, a trailing Z."""
    if when.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AuditEvent:
    sequence: int
    time: str
    actor: str
    action: str
    subject: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    previous_hash: str = GENESIS_HASH
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """Every field but the hash: what the hash covers."""
        return {
            "sequence": self.sequence,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "payload": dict(self.payload),
            "evidence": dict(self.evidence),
            "previous_hash": self.previous_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}


def event_hash(event: AuditEvent) -> str:
    """SHA-256 over the RFC 8785 canonical JSON of the event's other fields."""
    return hashlib.sha256(canonical_json(event.body())).hexdigest()


def seal(
    *,
    sequence: int,
    time: datetime,
    actor: str,
    action: str,
    subject: str,
    payload: Mapping[str, Any],
    evidence: Mapping[str, Any],
    previous_hash: str,
) -> AuditEvent:
    """A new event, chained to `previous_hash` and carrying its own hash."""
    unsealed = AuditEvent(
        sequence, format_time(time), actor, action, subject, payload, evidence, previous_hash
    )
    return AuditEvent(**{**unsealed.__dict__, "hash": event_hash(unsealed)})


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    head_hash: str
    first_bad: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_hash": self.head_hash,
            "first_bad_sequence": self.first_bad,
            "reason": self.reason,
        }


def verify_chain(
    events: Iterable[AuditEvent], *, start_sequence: int = 1, start_hash: str = GENESIS_HASH
) -> Verification:
    """Recompute the chain; report the first event that breaks it.

    Editing a row breaks its own hash; deleting one leaves a gap in the sequence (or, at the end,
    is caught only by a signed checkpoint); reordering breaks the previous-hash links.
    """
    expected_sequence, previous, count = start_sequence, start_hash, 0
    for event in events:
        if event.sequence != expected_sequence:
            why = f"expected sequence {expected_sequence} but found {event.sequence}: " + (
                "events are missing" if event.sequence > expected_sequence else "events are out of order"
            )
            return Verification(False, count, previous, min(event.sequence, expected_sequence), why)
        if event.previous_hash != previous:
            return Verification(
                False, count, previous, event.sequence, "its previous hash does not match the event before it"
            )
        if event_hash(event) != event.hash:
            return Verification(
                False,
                count,
                previous,
                event.sequence,
                "its content does not match its hash (the row was edited)",
            )
        previous, expected_sequence, count = event.hash, expected_sequence + 1, count + 1
    return Verification(True, count, previous)

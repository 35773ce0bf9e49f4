"""The audit ledger in SQL: append (in the caller's transaction) and read back for verification."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.clock import Clock
from charter.domain.canonical import canonical_json
from charter.domain.ledger import GENESIS_HASH, AuditEvent, format_time, seal
from charter.storage.schema import audit_events, ledger_head

# What changed from a sequence on (a range read of the primary key): the trace memo's invalidation.
_CHANGES_FROM = (
    sa.select(audit_events.c.sequence, audit_events.c.hash, audit_events.c.action, audit_events.c.subject)
    .where(audit_events.c.sequence >= sa.bindparam("start"))
    .order_by(audit_events.c.sequence)
    .limit(sa.bindparam("limit"))
)


class Ledger:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn, self.clock = conn, clock

    def lock_head(self) -> tuple[int, str]:
        """The head (sequence, hash), locked for this transaction on PostgreSQL."""
        query = sa.select(ledger_head.c.sequence, ledger_head.c.hash).where(ledger_head.c.id == 1)
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).one_or_none()
        if row is None:
            self.conn.execute(sa.insert(ledger_head).values(id=1, sequence=0, hash=GENESIS_HASH))
            return 0, GENESIS_HASH
        return int(row.sequence), str(row.hash)

    def append(
        self,
        actor: str,
        action: str,
        subject: str,
        payload: Mapping[str, Any] | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        sequence, previous = self.lock_head()
        now = self.clock.now()
        event = seal(
            sequence=sequence + 1,
            time=now,
            actor=actor,
            action=action,
            subject=subject,
            payload=_plain(payload or {}),
            evidence=_plain(evidence or {}),
            previous_hash=previous,
        )
        self.conn.execute(
            sa.insert(audit_events).values(
                sequence=event.sequence,
                time=event.time,
                actor=event.actor,
                action=event.action,
                subject=event.subject,
                payload=canonical_json(event.payload).decode(),
                evidence=canonical_json(event.evidence).decode(),
                previous_hash=event.previous_hash,
                hash=event.hash,
            )
        )
        self.conn.execute(
            sa.update(ledger_head)
            .where(ledger_head.c.id == 1)
            .values(sequence=event.sequence, hash=event.hash)
        )
        # The webhook outbox: written with the event, so a rolled-back change is never announced.
        # (Imported here: commands that only read never load the webhook machinery.)
        from charter.storage.webhooks import enqueue

        enqueue(self.conn, event.sequence, event.action, now)
        return event

    def head(self) -> tuple[int, str]:
        row = self.conn.execute(sa.select(ledger_head.c.sequence, ledger_head.c.hash)).one_or_none()
        return (0, GENESIS_HASH) if row is None else (int(row.sequence), str(row.hash))

    def events(
        self,
        *,
        subject: str | None = None,
        subject_prefix: str | None = None,
        since: str | None = None,
        until: str | None = None,
        actions: tuple[str, ...] = (),
        action_prefix: str | None = None,
        actor: str | None = None,
        after_sequence: int = 0,
        before_sequence: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        query = sa.select(audit_events).where(audit_events.c.sequence > after_sequence)
        if before_sequence is not None:
            query = query.where(audit_events.c.sequence < before_sequence)
        if subject is not None:
            query = query.where(audit_events.c.subject == subject)
        if subject_prefix is not None:
            query = query.where(audit_events.c.subject.startswith(subject_prefix, autoescape=True))
        if actor is not None:
            query = query.where(audit_events.c.actor == actor)
        if action_prefix is not None:
            query = query.where(audit_events.c.action.startswith(action_prefix, autoescape=True))
        if since is not None:
            query = query.where(audit_events.c.time >= since)
        if until is not None:
            query = query.where(audit_events.c.time < until)
        if actions:
            query = query.where(audit_events.c.action.in_(actions))
        order = audit_events.c.sequence.desc() if newest_first else audit_events.c.sequence
        query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        return [_event(row) for row in self.conn.execute(query)]

    def changes_from(self, sequence: int, limit: int) -> list[tuple[int, str, str, str]]:
        """(sequence, hash, action, subject) of the first `limit` events from `sequence` on
        (inclusive), in order: one indexed range read."""
        rows = self.conn.execute(_CHANGES_FROM, {"start": sequence, "limit": limit})
        return [(int(r.sequence), str(r.hash), str(r.action), str(r.subject)) for r in rows]

    def stream(self, batch: int = 5000) -> Iterator[AuditEvent]:
        """Every event in sequence order, read in batches (for verification of long chains)."""
        after = 0
        while True:
            rows = self.events(after_sequence=after, limit=batch)
            if not rows:
                return
            yield from rows
            after = rows[-1].sequence


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        sequence=int(row.sequence),
        time=row.time,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        payload=json.loads(row.payload),
        evidence=json.loads(row.evidence),
        previous_hash=row.previous_hash,
        hash=row.hash,
    )


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """Round-trip through canonical JSON so the stored and hashed forms are the same values."""
    result: dict[str, Any] = json.loads(canonical_json(value))
    return result


__all__ = ["Ledger", "format_time"]

"""Signed ledger checkpoints, and the few ledger lookups their verification needs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.domain.checkpoints import Checkpoint
from charter.domain.ledger import format_time
from charter.storage.schema import audit_events, checkpoints


class CheckpointRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, checkpoint: Checkpoint, *, signed_at: datetime, signed_by: str) -> None:
        if format_time(signed_at) != checkpoint.signed_at:
            raise ValueError("signed_at does not match the checkpoint's signed time")
        self.conn.execute(
            sa.insert(checkpoints).values(
                sequence=checkpoint.sequence,
                hash=checkpoint.hash,
                signed_at=signed_at,
                signed_by=signed_by,
                key_id=checkpoint.key_id,
                signature=checkpoint.signature,
            )
        )

    def all(self) -> list[Checkpoint]:
        rows = self.conn.execute(sa.select(checkpoints).order_by(checkpoints.c.sequence, checkpoints.c.id))
        return [_checkpoint(row) for row in rows]

    def latest_sequence(self) -> int | None:
        value = self.conn.execute(sa.select(sa.func.max(checkpoints.c.sequence))).scalar_one_or_none()
        return None if value is None else int(value)

    def changed_after(self, sequence: int, *, ignoring: str) -> bool:
        """Whether any audit event after `sequence` has an action other than `ignoring`."""
        query = (
            sa.select(audit_events.c.sequence)
            .where(audit_events.c.sequence > sequence, audit_events.c.action != ignoring)
            .limit(1)
        )
        return self.conn.execute(query).first() is not None

    def event_hashes(self, sequences: Iterable[int]) -> dict[int, str]:
        """The stored hash of each of these audit events that exists."""
        wanted = sorted(set(sequences))
        found: dict[int, str] = {}
        for start in range(0, len(wanted), 500):  # keep IN lists short on every engine
            batch = wanted[start : start + 500]
            rows = self.conn.execute(
                sa.select(audit_events.c.sequence, audit_events.c.hash).where(
                    audit_events.c.sequence.in_(batch)
                )
            )
            found.update((int(row.sequence), str(row.hash)) for row in rows)
        return found


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(
        sequence=int(row.sequence),
        hash=row.hash,
        signed_at=format_time(row.signed_at),
        key_id=row.key_id,
        signature=row.signature,
        signed_by=row.signed_by,
    )

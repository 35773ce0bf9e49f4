"""Contamination waivers: a reviewer's written acceptance of an evaluation's near-duplicate overlap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.storage.schema import contamination_waivers


@dataclass(frozen=True)
class WaiverRecord:
    id: int
    evaluation_id: int
    reason: str
    created_at: datetime
    created_by: str


class WaiverRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, evaluation_id: int, reason: str, *, at: datetime, by: str) -> WaiverRecord:
        key = self.conn.execute(
            sa.insert(contamination_waivers).values(
                evaluation_id=evaluation_id, reason=reason, created_at=at, created_by=by
            )
        ).inserted_primary_key
        assert key is not None
        return self.get(int(key[0]))

    def get(self, waiver_id: int) -> WaiverRecord:
        row = self.conn.execute(
            sa.select(contamination_waivers).where(contamination_waivers.c.id == waiver_id)
        ).one()
        return WaiverRecord(row.id, row.evaluation_id, row.reason, row.created_at, row.created_by)

    def for_evaluation(self, evaluation_id: int) -> list[WaiverRecord]:
        rows = self.conn.execute(
            sa.select(contamination_waivers)
            .where(contamination_waivers.c.evaluation_id == evaluation_id)
            .order_by(contamination_waivers.c.id)
        )
        return [WaiverRecord(r.id, r.evaluation_id, r.reason, r.created_at, r.created_by) for r in rows]

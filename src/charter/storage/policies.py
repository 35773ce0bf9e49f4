"""Versioned policy documents: each apply stores the whole document as a new version."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.storage.schema import policies


@dataclass(frozen=True)
class PolicyRecord:
    version: int
    document: dict[str, Any]
    digest: str
    created_at: datetime
    created_by: str


class PolicyRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def current(self, at: datetime | None = None) -> PolicyRecord | None:
        query = sa.select(policies).order_by(policies.c.version.desc()).limit(1)
        if at is not None:
            query = query.where(policies.c.created_at <= at)
        row = self.conn.execute(query).one_or_none()
        return None if row is None else _record(row)

    def history(self) -> list[PolicyRecord]:
        rows = self.conn.execute(sa.select(policies).order_by(policies.c.version))
        return [_record(row) for row in rows]

    def add(self, document_json: str, digest: str, *, at: datetime, by: str) -> PolicyRecord:
        latest = self.conn.execute(sa.select(sa.func.max(policies.c.version))).scalar_one_or_none()
        version = int(latest or 0) + 1
        self.conn.execute(
            sa.insert(policies).values(
                version=version, document=document_json, digest=digest, created_at=at, created_by=by
            )
        )
        return PolicyRecord(version, json.loads(document_json), digest, at, by)


def _record(row: Any) -> PolicyRecord:
    return PolicyRecord(row.version, json.loads(row.document), row.digest, row.created_at, row.created_by)

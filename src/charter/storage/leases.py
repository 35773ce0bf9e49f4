"""Job leases in SQL: one holder per background job, taken over when it expires.

Every change is one conditional statement whose WHERE clause is the rule, so two processes racing
for the same lease cannot both win: PostgreSQL re-checks the WHERE clause of an UPDATE against a row
another transaction has just changed, and `INSERT … ON CONFLICT DO NOTHING` lets exactly one insert
win; SQLite serialises writers altogether.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from charter.storage.engine import WRITE
from charter.storage.schema import job_leases


@dataclass(frozen=True)
class LeaseRecord:
    job: str
    holder: str
    token: int  # fencing token: +1 for each new holder
    acquired_at: datetime
    expires_at: datetime


@contextmanager
def lease_transaction(engine: Engine) -> Iterator[Connection]:
    """A short write transaction of its own (leases never take the ledger head lock)."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        yield conn


class LeaseRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def find(self, job: str) -> LeaseRecord | None:
        row = self.conn.execute(sa.select(job_leases).where(job_leases.c.job == job)).one_or_none()
        if row is None:
            return None
        return LeaseRecord(row.job, row.holder, int(row.token), row.acquired_at, row.expires_at)

    def take(self, job: str, holder: str, *, now: datetime, expires: datetime) -> int | None:
        """Renew the lease if `holder` has it, or take it if it has expired; the token, or None."""
        mine = job_leases.c.holder == holder
        row = self.conn.execute(
            sa.update(job_leases)
            .where(job_leases.c.job == job, sa.or_(mine, job_leases.c.expires_at <= now))
            .values(
                token=sa.case((mine, job_leases.c.token), else_=job_leases.c.token + 1),
                acquired_at=sa.case((mine, job_leases.c.acquired_at), else_=now),
                holder=holder,
                expires_at=expires,
            )
            .returning(job_leases.c.token)
        ).one_or_none()
        return None if row is None else int(row.token)

    def create(self, job: str, holder: str, *, now: datetime, expires: datetime) -> bool:
        """Create the lease for `holder` (token 1) unless a row for `job` exists already."""
        insert = postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert
        statement = (
            insert(job_leases)
            .values(job=job, holder=holder, token=1, acquired_at=now, expires_at=expires)
            .on_conflict_do_nothing(index_elements=[job_leases.c.job])
            .returning(job_leases.c.token)  # rowcount is not reliable here (psycopg reports -1)
        )
        return self.conn.execute(statement).one_or_none() is not None

    def release(self, job: str, holder: str, *, now: datetime) -> bool:
        """End `holder`'s lease now. The row stays, so the next holder's token is still higher."""
        return bool(
            self.conn.execute(
                sa.update(job_leases)
                .where(job_leases.c.job == job, job_leases.c.holder == holder, job_leases.c.expires_at > now)
                .values(expires_at=now)
            ).rowcount
        )

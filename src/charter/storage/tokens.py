"""API tokens: only the SHA-256 digest of each secret is stored, never the secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.storage.schema import api_tokens, users


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user: str
    user_disabled: bool
    name: str
    purpose: str
    digest: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


_COLUMNS = (
    api_tokens.c.id,
    users.c.name.label("user"),
    users.c.disabled.label("user_disabled"),
    api_tokens.c.name,
    api_tokens.c.purpose,
    api_tokens.c.digest,
    api_tokens.c.created_at,
    api_tokens.c.created_by,
    api_tokens.c.expires_at,
    api_tokens.c.revoked_at,
    api_tokens.c.revoked_by,
)


class TokenRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _select(self) -> sa.Select[Any]:
        return sa.select(*_COLUMNS).join(users, users.c.id == api_tokens.c.user_id)

    def add(
        self,
        user_id: int,
        name: str,
        digest: str,
        *,
        at: datetime,
        by: str,
        expires_at: datetime | None,
        purpose: str = "api",
    ) -> TokenRecord:
        key = self.conn.execute(
            sa.insert(api_tokens).values(
                user_id=user_id,
                name=name,
                purpose=purpose,
                digest=digest,
                created_at=at,
                created_by=by,
                expires_at=expires_at,
            )
        ).inserted_primary_key
        assert key is not None
        record = self.get(int(key[0]))
        assert record is not None
        return record

    def get(self, token_id: int) -> TokenRecord | None:
        row = self.conn.execute(self._select().where(api_tokens.c.id == token_id)).one_or_none()
        return None if row is None else _record(row)

    def find_by_digest(self, digest: str) -> TokenRecord | None:
        row = self.conn.execute(self._select().where(api_tokens.c.digest == digest)).one_or_none()
        return None if row is None else _record(row)

    def all(self, user: str | None = None) -> list[TokenRecord]:
        query = self._select().order_by(api_tokens.c.id)
        if user is not None:
            query = query.where(users.c.name == user)
        return [_record(row) for row in self.conn.execute(query)]

    def revoke(self, token_id: int, *, at: datetime, by: str) -> bool:
        """Revoke the token unless it is revoked already; True if this call revoked it (so of two
        concurrent revocations exactly one wins: a one-time link is redeemed once)."""
        result = self.conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at, revoked_by=by)
        )
        return result.rowcount == 1


def _record(row: Any) -> TokenRecord:
    return TokenRecord(
        id=int(row.id),
        user=row.user,
        user_disabled=bool(row.user_disabled),
        name=row.name,
        purpose=row.purpose,
        digest=row.digest,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )

"""Users and their roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charter.domain.roles import Role
from charter.storage.schema import user_roles, users


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    roles: frozenset[Role]
    disabled: bool
    created_at: datetime
    created_by: str


_USER_WITH_ROLES = (
    sa.select(users, user_roles.c.role)
    .outerjoin(user_roles, user_roles.c.user_id == users.c.id)
    .where(users.c.name == sa.bindparam("name"))
)


class UserRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def find(self, name: str) -> UserRecord | None:
        """The user and their roles: one precompiled statement (every use case authorises with it)."""
        rows = self.conn.execute(_USER_WITH_ROLES, {"name": name}).all()
        if not rows:
            return None
        row = rows[0]
        roles = frozenset(Role(r.role) for r in rows if r.role is not None)
        return UserRecord(row.id, row.name, roles, row.disabled, row.created_at, row.created_by)

    def all(self) -> list[UserRecord]:
        names = self.conn.execute(sa.select(users.c.name).order_by(users.c.name)).scalars().all()
        return [u for u in (self.find(n) for n in names) if u is not None]

    def count(self) -> int:
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    def add(self, name: str, roles: frozenset[Role], *, at: datetime, by: str) -> None:
        user_id = self.conn.execute(
            sa.insert(users).values(name=name, disabled=False, created_at=at, created_by=by)
        ).inserted_primary_key
        assert user_id is not None
        self.set_roles(int(user_id[0]), roles)

    def set_roles(self, user_id: int, roles: frozenset[Role]) -> None:
        self.conn.execute(sa.delete(user_roles).where(user_roles.c.user_id == user_id))
        if roles:
            self.conn.execute(
                sa.insert(user_roles), [{"user_id": user_id, "role": r.value} for r in sorted(roles)]
            )

    def set_disabled(self, user_id: int, disabled: bool) -> None:
        self.conn.execute(sa.update(users).where(users.c.id == user_id).values(disabled=disabled))

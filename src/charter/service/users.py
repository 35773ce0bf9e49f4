"""Users and roles."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.domain.refs import check_name
from charter.domain.roles import Action, Role
from charter.errors import AlreadyExists, InvalidInput, NotFound
from charter.service.access import authorize
from charter.storage.store import Store, Tx
from charter.storage.users import UserRecord

if TYPE_CHECKING:
    from charter.service.registry import Registry


@dataclass(frozen=True)
class User:
    name: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, record: UserRecord) -> User:
        return cls(
            record.name,
            tuple(sorted(r.value for r in record.roles)),
            record.disabled,
            record.created_at,
            record.created_by,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


class UserService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def _store(self) -> Store:
        return self.registry.store

    def add(self, name: str, roles: Iterable[str | Role]) -> User:
        parsed = frozenset(Role.parse(r) if isinstance(r, str) else r for r in roles)
        if not parsed:
            raise InvalidInput(
                "a user needs at least one role; accepted: " + ", ".join(r.value for r in Role)
            )
        check_name(name, "user")
        with self._store.write() as tx:
            authorize(tx, self.registry.actor, Action.MANAGE_USERS)
            if tx.users.find(name) is not None:
                raise AlreadyExists(f"user {name!r}", "change its roles with `charter user roles`")
            tx.users.add(name, parsed, at=tx.clock.now(), by=self.registry.actor)
            tx.ledger.append(
                self.registry.actor, "user.added", f"user:{name}", {"roles": sorted(r.value for r in parsed)}
            )
            return User.of(_found(tx.users.find(name), name))

    def list(self) -> list[User]:
        with self._store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return [User.of(u) for u in tx.users.all()]

    def get(self, name: str) -> User:
        with self._store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return User.of(_found(tx.users.find(name), name))

    def change_roles(self, name: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> User:
        adding = frozenset(Role.parse(r) for r in add)
        removing = frozenset(Role.parse(r) for r in remove)
        if not adding and not removing:
            raise InvalidInput("say which roles to --add or --remove")
        if adding & removing:
            raise InvalidInput(
                "a role cannot be both added and removed: "
                + ", ".join(sorted(r.value for r in adding & removing))
            )
        with self._store.write() as tx:
            authorize(tx, self.registry.actor, Action.MANAGE_USERS)
            user = _found(tx.users.find(name), name)
            roles = (user.roles | adding) - removing
            if roles == user.roles:
                return User.of(user)
            if Role.ADMIN in user.roles and Role.ADMIN not in roles and _last_admin(tx, name):
                raise InvalidInput(f"{name} is the last enabled admin; grant admin to another user first")
            tx.users.set_roles(user.id, roles)
            tx.ledger.append(
                self.registry.actor,
                "user.roles_changed",
                f"user:{name}",
                {
                    "added": sorted(r.value for r in roles - user.roles),
                    "removed": sorted(r.value for r in user.roles - roles),
                    "roles": sorted(r.value for r in roles),
                },
            )
            return User.of(_found(tx.users.find(name), name))

    def disable(self, name: str) -> User:
        return self._set_disabled(name, True)

    def enable(self, name: str) -> User:
        return self._set_disabled(name, False)

    def _set_disabled(self, name: str, disabled: bool) -> User:
        with self._store.write() as tx:
            authorize(tx, self.registry.actor, Action.MANAGE_USERS)
            user = _found(tx.users.find(name), name)
            if user.disabled == disabled:
                return User.of(user)
            if disabled and Role.ADMIN in user.roles and _last_admin(tx, name):
                raise InvalidInput(f"{name} is the last enabled admin; grant admin to another user first")
            tx.users.set_disabled(user.id, disabled)
            tx.ledger.append(
                self.registry.actor, "user.disabled" if disabled else "user.enabled", f"user:{name}"
            )
            return User.of(_found(tx.users.find(name), name))


def _found(user: UserRecord | None, name: str) -> UserRecord:
    if user is None:
        raise NotFound(f"user {name!r}", "list users with `charter user list`")
    return user


def _last_admin(tx: Tx, name: str) -> bool:
    admins = [u for u in tx.users.all() if Role.ADMIN in u.roles and not u.disabled]
    return [u.name for u in admins] == [name]

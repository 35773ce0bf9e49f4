"""The audit ledger on both engines: appends in the same transaction, verification catches edits."""

from __future__ import annotations

import sqlalchemy as sa

from charter.service.registry import Registry
from charter.storage.schema import audit_events
from tests.conftest import add_user


def test_every_change_is_audited_and_verifies(registry: Registry) -> None:
    add_user(registry, "bob", "reviewer")
    registry.users.change_roles("bob", add=["author"])
    registry.users.disable("bob")
    actions = [e.action for e in registry.audit.log()]
    assert actions == ["store.initialised", "user.added", "user.roles_changed", "user.disabled"]
    assert registry.audit.verify().ok


def test_editing_a_row_is_detected(registry: Registry) -> None:
    add_user(registry, "bob", "reviewer")
    add_user(registry, "carol", "author")
    with registry.store.engine.begin() as conn:
        conn.execute(
            sa.update(audit_events).where(audit_events.c.sequence == 2).values(payload='{"roles":["admin"]}')
        )
    result = registry.audit.verify()
    assert not result.ok
    assert result.first_bad == 2


def test_deleting_the_last_row_is_detected(registry: Registry) -> None:
    add_user(registry, "bob", "reviewer")
    with registry.store.engine.begin() as conn:
        conn.execute(sa.delete(audit_events).where(audit_events.c.sequence == 2))
    result = registry.audit.verify()
    assert not result.ok
    assert result.first_bad == 2


def test_deleting_a_middle_row_is_detected(registry: Registry) -> None:
    add_user(registry, "bob", "reviewer")
    add_user(registry, "carol", "author")
    with registry.store.engine.begin() as conn:
        conn.execute(sa.delete(audit_events).where(audit_events.c.sequence == 2))
    result = registry.audit.verify()
    assert not result.ok
    assert result.first_bad == 2

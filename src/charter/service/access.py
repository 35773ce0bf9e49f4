"""Who is acting, and may they? Checked inside the use case's own transaction."""

from __future__ import annotations

from charter.domain.roles import Action, require
from charter.errors import UnknownActor, UserDisabled
from charter.storage.store import Tx
from charter.storage.users import UserRecord


def authorize(tx: Tx, actor: str, action: Action) -> UserRecord:
    """The acting user, if registered, enabled and holding a role that grants `action`."""
    user = tx.users.find(actor)
    if user is None:
        raise UnknownActor(actor)
    if user.disabled:
        raise UserDisabled(actor)
    require(actor, user.roles, action)
    return user

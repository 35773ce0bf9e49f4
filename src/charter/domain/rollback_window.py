"""The rollback window: how long the release a rollout replaced stays pinned and restorable."""

from __future__ import annotations

from datetime import datetime

from charter.domain.tracks import TrackPolicy
from charter.errors import RollbackWindowClosed


def rollback_deadline(promoted_at: datetime, policy: TrackPolicy) -> datetime:
    """Until when the release a rollout replaced stays pinned and can be restored in one step."""
    return promoted_at + policy.rollback_window


def check_rollback_window(
    *, slot: str, release: str, promoted_at: datetime, policy: TrackPolicy, now: datetime
) -> None:
    """Refuse `charter slot rollback` to `release` once the rollback window has closed."""
    deadline = rollback_deadline(promoted_at, policy)
    if now > deadline:
        raise RollbackWindowClosed(slot, release, deadline.isoformat())

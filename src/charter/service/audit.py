"""Reading and verifying the audit ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.domain.ledger import AuditEvent, Verification, format_time, verify_chain
from charter.domain.roles import Action
from charter.errors import InvalidInput
from charter.service.access import authorize

if TYPE_CHECKING:
    from charter.service.registry import Registry


@dataclass(frozen=True)
class AuditPage:
    """One page of matching events, newest first. `older` / `newer`: the sequence to pass as
    `before` / `after` for the adjacent page (None: there is none)."""

    events: tuple[AuditEvent, ...]
    older: int | None
    newer: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"events": [e.as_dict() for e in self.events], "older": self.older, "newer": self.newer}


class AuditService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def log(
        self,
        *,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        """Events in sequence order. A subject ending in `*` matches by prefix
        (`model:support-llm*` is every event about that model and its versions)."""
        prefix = None
        if subject is not None and subject.endswith("*"):
            prefix, subject = subject[:-1], None
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return tx.ledger.events(
                subject=subject,
                subject_prefix=prefix,
                since=None if since is None else format_time(since),
                until=None if until is None else format_time(until),
                limit=limit,
                newest_first=newest_first,
            )

    def verify(self) -> Verification:
        """Recompute the whole chain, then check it ends at the recorded head."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            result = verify_chain(tx.ledger.stream())
            head_sequence, head_hash = tx.ledger.head()
        if result.ok and (result.events != head_sequence or result.head_hash != head_hash):
            return Verification(
                False,
                result.events,
                result.head_hash,
                min(result.events, head_sequence) + 1,
                f"the chain ends at event {result.events} but the recorded head is event "
                f"{head_sequence}: events were deleted from the end, or the head was altered",
            )
        return result

    def page(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> AuditPage:
        """A page of the ledger, newest first, by sequence (keyset paging: as fast on page 10 000 as
        on page 1). `subject` and `action` ending in `*` match by prefix; `before` gives the page of
        events older than that sequence, `after` the page of events newer than it."""
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit {limit} is out of range; accepted: 1 to 1000")
        filters: dict[str, Any] = {
            "actor": actor or None,
            "since": None if since is None else format_time(since),
            "until": None if until is None else format_time(until),
        }
        if subject:
            key = "subject_prefix" if subject.endswith("*") else "subject"
            filters[key] = subject.removesuffix("*")
        if action:
            if action.endswith("*"):
                filters["action_prefix"] = action.removesuffix("*")
            else:
                filters["actions"] = (action,)
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            if after is not None and before is None:
                rows = tx.ledger.events(after_sequence=after, limit=limit + 1, **filters)
                events = rows[:limit][::-1]
                newer = events[0].sequence if len(rows) > limit else None
                older_rows = (
                    []
                    if not events
                    else tx.ledger.events(
                        before_sequence=events[-1].sequence, limit=1, newest_first=True, **filters
                    )
                )
                older = events[-1].sequence if older_rows else None
                return AuditPage(tuple(events), older, newer)
            rows = tx.ledger.events(before_sequence=before, limit=limit + 1, newest_first=True, **filters)
            events = rows[:limit]
            older = events[-1].sequence if len(rows) > limit else None
            newer_rows = (
                [] if not events else tx.ledger.events(after_sequence=events[0].sequence, limit=1, **filters)
            )
            newer = events[0].sequence if newer_rows else None
            return AuditPage(tuple(events), older, newer)

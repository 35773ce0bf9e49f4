"""Reading and verifying the audit ledger."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from charter.domain.ledger import AuditEvent, Verification, format_time, verify_chain
from charter.domain.roles import Action
from charter.service.access import authorize

if TYPE_CHECKING:
    from charter.service.registry import Registry


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

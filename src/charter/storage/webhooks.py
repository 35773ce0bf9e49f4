"""Webhooks and their outbox in SQL.

`enqueue` runs inside `Ledger.append`, in the event's own transaction. Claiming and recording
deliveries run in short transactions of their own (`operational`), which never lock the ledger head:
delivery bookkeeping is operational data, not audited state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from charter.domain.ledger import AuditEvent, format_time
from charter.domain.webhooks import MAX_ATTEMPTS, DeliveryStatus, matches, retry_delay
from charter.storage.engine import WRITE
from charter.storage.schema import audit_events, webhook_outbox, webhooks

PENDING, DELIVERED, FAILED = (s.value for s in DeliveryStatus)


@dataclass(frozen=True)
class WebhookRecord:
    id: int
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: datetime
    created_by: str
    removed_at: datetime | None
    removed_by: str | None


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    webhook_id: int
    sequence: int
    action: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None

    @property
    def last_attempt_at(self) -> datetime | None:
        """When the latest attempt started: an attempt sets `next_attempt_at` to its start plus the
        retry delay (see `claim_due`), and that delay is a function of the row."""
        if self.attempts == 0:
            return None
        return self.next_attempt_at - retry_delay(self.id, self.attempts)


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one attempt (number `attempt`), with what is needed to send it."""

    id: int
    webhook_id: int
    url: str
    secret: str
    attempt: int
    event: AuditEvent


@contextmanager
def operational(engine: Engine) -> Iterator[Connection]:
    """A short write transaction that does not take the ledger head lock (SQLite still serialises
    it with BEGIN IMMEDIATE)."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        yield conn


# Built once: this runs with every audited event, and building a Select costs more than running it.
_ACTIVE_WEBHOOKS = sa.select(webhooks.c.id, webhooks.c.events).where(webhooks.c.removed_at.is_(None))


def enqueue(conn: Connection, sequence: int, action: str, at: datetime) -> int:
    """One pending delivery per active webhook whose patterns match `action`; the count. Costs one
    query on the (small) webhooks table for every audited event, and nothing more without webhooks."""
    hooks = conn.execute(_ACTIVE_WEBHOOKS)
    rows = [
        {
            "webhook_id": hook.id,
            "sequence": sequence,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": at,
        }
        for hook in hooks
        if matches(hook.events, action)
    ]
    if rows:
        conn.execute(sa.insert(webhook_outbox), rows)
    return len(rows)


class WebhookRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- the webhooks ---------------------------------------------------------------------------

    def add(self, url: str, events: Sequence[str], secret: str, *, at: datetime, by: str) -> int:
        key = self.conn.execute(
            sa.insert(webhooks).values(
                url=url, events=",".join(events), secret=secret, created_at=at, created_by=by
            )
        ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def find(self, webhook_id: int) -> WebhookRecord | None:
        row = self.conn.execute(sa.select(webhooks).where(webhooks.c.id == webhook_id)).one_or_none()
        return None if row is None else _webhook(row)

    def all(self, *, include_removed: bool = False) -> list[WebhookRecord]:
        query = sa.select(webhooks).order_by(webhooks.c.id)
        if not include_removed:
            query = query.where(webhooks.c.removed_at.is_(None))
        return [_webhook(row) for row in self.conn.execute(query)]

    def remove(self, webhook_id: int, *, at: datetime, by: str) -> int:
        """Mark the webhook removed and give up its pending deliveries; how many were given up."""
        self.conn.execute(
            sa.update(webhooks).where(webhooks.c.id == webhook_id).values(removed_at=at, removed_by=by)
        )
        return self.conn.execute(
            sa.update(webhook_outbox)
            .where(webhook_outbox.c.webhook_id == webhook_id, webhook_outbox.c.status == PENDING)
            .values(status=FAILED, last_error="the webhook was removed before this event was delivered")
        ).rowcount

    # --- delivery status ------------------------------------------------------------------------

    def counts(self, webhook_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            sa.select(webhook_outbox.c.status, sa.func.count())
            .where(webhook_outbox.c.webhook_id == webhook_id)
            .group_by(webhook_outbox.c.status)
        )
        found = {str(status): int(count) for status, count in rows}
        return {s.value: found.get(s.value, 0) for s in DeliveryStatus}

    def deliveries(
        self, webhook_id: int, *, status: DeliveryStatus | None = None, limit: int = 50
    ) -> list[OutboxRecord]:
        """The webhook's deliveries, newest event first."""
        query = _outbox_query().where(webhook_outbox.c.webhook_id == webhook_id)
        if status is not None:
            query = query.where(webhook_outbox.c.status == status.value)
        query = query.order_by(webhook_outbox.c.sequence.desc()).limit(limit)
        return [_outbox(row) for row in self.conn.execute(query)]

    def last_attempted(self, webhook_id: int) -> OutboxRecord | None:
        """The delivery whose latest attempt started last.

        Rows are read by `next_attempt_at`, newest first; an attempt starts before the row's
        `next_attempt_at`, so the scan stops at the first row whose `next_attempt_at` is older than
        the best start found so far.
        """
        query = (
            _outbox_query()
            .where(webhook_outbox.c.webhook_id == webhook_id, webhook_outbox.c.attempts > 0)
            .order_by(webhook_outbox.c.next_attempt_at.desc(), webhook_outbox.c.id.desc())
        )
        best: OutboxRecord | None = None
        best_at: datetime | None = None
        result = self.conn.execute(query.execution_options(stream_results=True, yield_per=200))
        try:
            for row in result:
                if best_at is not None and row.next_attempt_at < best_at:
                    break
                record = _outbox(row)
                started = record.last_attempt_at
                if started is not None and (best_at is None or started > best_at):
                    best, best_at = record, started
        finally:
            result.close()
        return best

    # --- retention ------------------------------------------------------------------------------

    def prune_finished(self, before: datetime) -> int:
        """Delete the delivered and failed deliveries of events audited before `before` (pending ones
        stay, whatever their age); how many were deleted. The events stay in the ledger."""
        last = self.conn.execute(
            sa.select(audit_events.c.sequence)
            .where(audit_events.c.time < format_time(before))
            .order_by(audit_events.c.sequence.desc())
            .limit(1)
        ).scalar_one_or_none()
        if last is None:
            return 0
        return int(
            self.conn.execute(
                sa.delete(webhook_outbox).where(
                    webhook_outbox.c.sequence <= last, webhook_outbox.c.status.in_((DELIVERED, FAILED))
                )
            ).rowcount
        )

    # --- claiming and recording (operational transactions) -----------------------------------

    def claim_due(self, now: datetime, limit: int) -> tuple[list[Claimed], int]:
        """Take up to `limit` due deliveries for one attempt each; also give up on any whose final
        attempt never reported back. Returns the claimed deliveries and the count given up.

        Claiming counts the attempt and moves `next_attempt_at` to when the attempt would be retried:
        until then no other deliverer sees the row (PostgreSQL skips rows another claim holds
        locked), and if this deliverer dies mid-attempt the row simply comes due again.
        """
        due = self.conn.execute(
            sa.select(webhook_outbox.c.id, webhook_outbox.c.attempts)
            .where(webhook_outbox.c.status == PENDING, webhook_outbox.c.next_attempt_at <= now)
            .order_by(webhook_outbox.c.next_attempt_at, webhook_outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        exhausted = [row.id for row in due if row.attempts >= MAX_ATTEMPTS]
        if exhausted:
            self.conn.execute(
                sa.update(webhook_outbox)
                .where(webhook_outbox.c.id.in_(exhausted))
                .values(
                    status=FAILED,
                    last_error=f"no outcome was recorded for attempt {MAX_ATTEMPTS} (the deliverer stopped "
                    "during it); giving up",
                )
            )
        attempts = {int(row.id): int(row.attempts) + 1 for row in due if row.attempts < MAX_ATTEMPTS}
        for delivery, attempt in attempts.items():
            self.conn.execute(
                sa.update(webhook_outbox)
                .where(webhook_outbox.c.id == delivery)
                .values(attempts=attempt, next_attempt_at=now + retry_delay(delivery, attempt))
            )
        if not attempts:
            return [], len(exhausted)
        query = (
            sa.select(
                webhook_outbox.c.id.label("delivery"),
                webhook_outbox.c.webhook_id,
                webhooks.c.url,
                webhooks.c.secret,
                audit_events,
            )
            .join(webhooks, webhooks.c.id == webhook_outbox.c.webhook_id)
            .join(audit_events, audit_events.c.sequence == webhook_outbox.c.sequence)
            .where(webhook_outbox.c.id.in_(list(attempts)))
            .order_by(webhook_outbox.c.id)
        )
        claimed = [
            Claimed(
                int(row.delivery),
                int(row.webhook_id),
                row.url,
                row.secret or "",
                attempts[int(row.delivery)],
                _event(row),
            )
            for row in self.conn.execute(query)
        ]
        return claimed, len(exhausted)

    def record_delivered(self, delivery: int, http_status: int, *, at: datetime) -> bool:
        return bool(
            self.conn.execute(
                sa.update(webhook_outbox)
                .where(webhook_outbox.c.id == delivery, webhook_outbox.c.status == PENDING)
                .values(status=DELIVERED, delivered_at=at, last_status=http_status, last_error=None)
            ).rowcount
        )

    def record_failed(
        self, delivery: int, attempt: int, http_status: int | None, error: str
    ) -> DeliveryStatus:
        """Record a failed attempt; the row stays pending (retried at the `next_attempt_at` its claim
        set) unless that was the last attempt allowed. A row someone else has claimed since (its
        attempt count moved on) is left alone."""
        status = DeliveryStatus.FAILED if attempt >= MAX_ATTEMPTS else DeliveryStatus.PENDING
        self.conn.execute(
            sa.update(webhook_outbox)
            .where(
                webhook_outbox.c.id == delivery,
                webhook_outbox.c.status == PENDING,
                webhook_outbox.c.attempts == attempt,
            )
            .values(status=status.value, last_status=http_status, last_error=error[:2000])
        )
        return status


def _outbox_query() -> sa.Select[Any]:
    return sa.select(webhook_outbox, audit_events.c.action).join(
        audit_events, audit_events.c.sequence == webhook_outbox.c.sequence
    )


def _webhook(row: Any) -> WebhookRecord:
    return WebhookRecord(
        int(row.id),
        row.url,
        tuple(row.events.split(",")),
        row.secret or "",
        row.created_at,
        row.created_by,
        row.removed_at,
        row.removed_by,
    )


def _outbox(row: Any) -> OutboxRecord:
    return OutboxRecord(
        int(row.id),
        int(row.webhook_id),
        int(row.sequence),
        row.action,
        DeliveryStatus(row.status),
        int(row.attempts),
        row.next_attempt_at,
        row.last_status,
        row.last_error,
        row.delivered_at,
    )


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        sequence=int(row.sequence),
        time=row.time,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        payload=json.loads(row.payload),
        evidence=json.loads(row.evidence),
        previous_hash=row.previous_hash,
        hash=row.hash,
    )

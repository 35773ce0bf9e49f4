"""Webhooks: audited events delivered as signed JSON, at least once, from the outbox.

`Ledger.append` writes one outbox row per matching webhook in the event's own transaction.
`deliver_due` claims due rows in a short transaction, sends them with no transaction open, then
records each outcome in another short one. Delivery bookkeeping is operational data: it is not
audited (that would create events about events). Adding and removing webhooks is audited; the secret
never enters the ledger.

Finished deliveries (delivered or failed) are kept for `RETENTION` after their event, then the
server's pruner job deletes them (`prune`), so the outbox does not grow with the ledger; pending
deliveries are never pruned.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from charter.domain.roles import Action
from charter.domain.webhooks import (
    DeliveryStatus,
    check_secret,
    check_url,
    parse_patterns,
    signature,
)
from charter.errors import InvalidInput, NotFound
from charter.service.access import authorize
from charter.storage.webhooks import Claimed, OutboxRecord, WebhookRecord, WebhookRepo, operational

if TYPE_CHECKING:
    import httpx

    from charter.service.registry import Registry

log = logging.getLogger("charter.webhooks")

RETENTION = timedelta(days=30)  # how long finished deliveries are kept after their event
CHUNK = 10  # deliveries claimed, then sent in parallel, at a time
TIMEOUT = 5.0  # seconds per HTTP phase; well under the first retry delay (≥ 9 s), which is the claim


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


@dataclass(frozen=True)
class Webhook:
    id: int
    url: str
    events: tuple[str, ...]
    created_at: datetime
    created_by: str
    removed_at: datetime | None
    removed_by: str | None

    @classmethod
    def of(cls, record: WebhookRecord) -> Webhook:
        return cls(
            record.id,
            record.url,
            record.events,
            record.created_at,
            record.created_by,
            record.removed_at,
            record.removed_by,
        )

    @property
    def active(self) -> bool:
        return self.removed_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "active": self.active,
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
            "removed_at": _iso(self.removed_at),
            "removed_by": self.removed_by,
        }


@dataclass(frozen=True)
class NewWebhook:
    """A webhook just added. `secret` is set only when charter generated it: it is shown this once."""

    webhook: Webhook
    secret: str | None

    def as_dict(self) -> dict[str, Any]:
        return {**self.webhook.as_dict(), "secret": self.secret}


@dataclass(frozen=True)
class Delivery:
    """One audited event on its way to one webhook."""

    id: int
    webhook: int
    sequence: int
    action: str
    status: DeliveryStatus
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None  # only while pending
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, record: OutboxRecord) -> Delivery:
        pending = record.status is DeliveryStatus.PENDING
        return cls(
            record.id,
            record.webhook_id,
            record.sequence,
            record.action,
            record.status,
            record.attempts,
            record.last_attempt_at,
            record.next_attempt_at if pending else None,
            record.last_status,
            record.last_error,
            record.delivered_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhook": self.webhook,
            "sequence": self.sequence,
            "action": self.action,
            "status": self.status.value,
            "attempts": self.attempts,
            "last_attempt_at": _iso(self.last_attempt_at),
            "next_attempt_at": _iso(self.next_attempt_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": _iso(self.delivered_at),
        }


@dataclass(frozen=True)
class WebhookDeliveries:
    """A webhook's delivery status: counts by status, its latest attempt, and recent deliveries."""

    webhook: Webhook
    counts: dict[str, int]
    last_attempt: Delivery | None
    deliveries: tuple[Delivery, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "webhook": self.webhook.as_dict(),
            "counts": dict(self.counts),
            "last_attempt": None if self.last_attempt is None else self.last_attempt.as_dict(),
            "deliveries": [d.as_dict() for d in self.deliveries],
        }


@dataclass(frozen=True)
class Attempt:
    """The outcome of one delivery attempt: `delivered`, `retrying` (pending again) or `failed`."""

    delivery: int
    webhook: int
    sequence: int
    action: str
    attempt: int
    outcome: str
    http_status: int | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivery": self.delivery,
            "webhook": self.webhook,
            "sequence": self.sequence,
            "action": self.action,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "error": self.error,
        }


@dataclass(frozen=True)
class DeliveryReport:
    started: datetime
    attempts: tuple[Attempt, ...]
    abandoned: int  # deliveries whose final attempt never reported back, now failed

    def count(self, outcome: str) -> int:
        return sum(1 for a in self.attempts if a.outcome == outcome)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "delivered": self.count("delivered"),
            "retrying": self.count("retrying"),
            "failed": self.count("failed") + self.abandoned,
            "attempts": [a.as_dict() for a in self.attempts],
        }


@dataclass(frozen=True)
class PruneReport:
    before: datetime  # deliveries of events audited before this instant were eligible
    deleted: int

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before.isoformat(), "deleted": self.deleted}


@dataclass(frozen=True)
class _Sent:
    claimed: Claimed
    http_status: int | None
    error: str | None


class WebhookService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.timeout = TIMEOUT

    @property
    def _actor(self) -> str:
        return self.registry.actor

    def add(self, url: str, events: str, *, secret: str | None = None) -> NewWebhook:
        """Deliver every audited event whose action matches one of `events` (comma-separated globs)
        to `url`, signed with `secret` (generated when not given)."""
        url = check_url(url)
        patterns = parse_patterns(events)
        generated = secret is None
        key = secrets.token_urlsafe(32) if secret is None else check_secret(secret)
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.MANAGE_WEBHOOKS)
            repo = WebhookRepo(tx.conn)
            webhook_id = repo.add(url, patterns, key, at=tx.clock.now(), by=self._actor)
            tx.ledger.append(
                self._actor,
                "webhook.added",
                f"webhook:{webhook_id}",
                {"url": url, "events": list(patterns), "secret": "generated" if generated else "given"},
            )
            webhook = Webhook.of(_found(repo.find(webhook_id), webhook_id))
        return NewWebhook(webhook, key if generated else None)

    def list(self, *, include_removed: bool = False) -> list[Webhook]:
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.READ)
            return [Webhook.of(w) for w in WebhookRepo(tx.conn).all(include_removed=include_removed)]

    def get(self, webhook_id: int) -> Webhook:
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.READ)
            return Webhook.of(_found(WebhookRepo(tx.conn).find(webhook_id), webhook_id))

    def remove(self, webhook_id: int) -> Webhook:
        """Stop delivering to a webhook; its pending deliveries are given up (status failed)."""
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.MANAGE_WEBHOOKS)
            repo = WebhookRepo(tx.conn)
            record = _found(repo.find(webhook_id), webhook_id)
            if record.removed_at is not None:
                return Webhook.of(record)
            abandoned = repo.remove(webhook_id, at=tx.clock.now(), by=self._actor)
            tx.ledger.append(
                self._actor,
                "webhook.removed",
                f"webhook:{webhook_id}",
                {"url": record.url, "pending_given_up": abandoned},
            )
            return Webhook.of(_found(repo.find(webhook_id), webhook_id))

    def deliveries(self, webhook_id: int, *, status: str | None = None, limit: int = 50) -> WebhookDeliveries:
        """Counts by status, the latest attempt, and the `limit` newest deliveries (of one `status`:
        pending, delivered or failed)."""
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, not {limit}")
        wanted = None if status is None else DeliveryStatus.parse(status)
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.READ)
            repo = WebhookRepo(tx.conn)
            webhook = Webhook.of(_found(repo.find(webhook_id), webhook_id))
            last = repo.last_attempted(webhook_id)
            return WebhookDeliveries(
                webhook,
                repo.counts(webhook_id),
                None if last is None else Delivery.of(last),
                tuple(Delivery.of(d) for d in repo.deliveries(webhook_id, status=wanted, limit=limit)),
            )

    def deliver_due(self, *, limit: int = 100) -> DeliveryReport:
        """Make one attempt at each due delivery (at most `limit`), then record the outcomes."""
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, not {limit}")
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.MANAGE_WEBHOOKS)
        engine, clock = self.registry.store.engine, self.registry.clock
        started = clock.now()
        attempts: list[Attempt] = []
        abandoned = 0
        with ExitStack() as stack:
            client: httpx.Client | None = None
            while len(attempts) < limit:
                with operational(engine) as conn:
                    claimed, gave_up = WebhookRepo(conn).claim_due(
                        clock.now(), min(CHUNK, limit - len(attempts))
                    )
                abandoned += gave_up
                if not claimed:
                    if gave_up:
                        continue
                    break
                if client is None:  # made only when there is something to send
                    client = stack.enter_context(self._client())
                sent = self._send_all(client, claimed)
                with operational(engine) as conn:
                    attempts.extend(_record(WebhookRepo(conn), s, clock.now()) for s in sent)
        return DeliveryReport(started, tuple(attempts), abandoned)

    def prune(self, *, older_than: timedelta = RETENTION) -> PruneReport:
        """Delete the finished (delivered or failed) deliveries of events older than `older_than`;
        pending deliveries stay. Operational data, like the delivery bookkeeping: not audited."""
        if older_than <= timedelta(0):
            raise InvalidInput(f"older_than must be a positive duration (30d, 12h, …), not {older_than}")
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.MANAGE_WEBHOOKS)
        before = self.registry.clock.now() - older_than
        with operational(self.registry.store.engine) as conn:
            deleted = WebhookRepo(conn).prune_finished(before)
        if deleted:
            log.info("webhook outbox: pruned %d finished deliveries of events before %s", deleted, before)
        return PruneReport(before, deleted)

    def _client(self) -> httpx.Client:
        import httpx

        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 3.0))
        return httpx.Client(timeout=timeout, follow_redirects=False)

    def _send_all(self, client: httpx.Client, claimed: Sequence[Claimed]) -> tuple[_Sent, ...]:
        """Send claimed deliveries in parallel, so a chunk takes as long as its slowest receiver."""
        if len(claimed) == 1:
            return (self._send(client, claimed[0]),)
        with ThreadPoolExecutor(max_workers=len(claimed)) as pool:
            return tuple(pool.map(lambda c: self._send(client, c), claimed))

    def _send(self, client: httpx.Client, claimed: Claimed) -> _Sent:
        timestamp = int(self.registry.clock.now().timestamp())
        body = json.dumps(
            {**claimed.event.as_dict(), "delivery": claimed.id, "webhook": claimed.webhook_id},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "charter-webhooks",
            "X-Charter-Event": claimed.event.action,
            "X-Charter-Delivery": str(claimed.id),
            "X-Charter-Timestamp": str(timestamp),
            "X-Charter-Signature": signature(claimed.secret, timestamp, body),
        }
        try:
            with client.stream("POST", claimed.url, content=body, headers=headers) as response:
                status = response.status_code
        except Exception as exc:  # any failure to talk to the receiver is an outcome, not a crash
            return _Sent(claimed, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if 200 <= status < 300:
            return _Sent(claimed, status, None)
        return _Sent(claimed, status, f"HTTP {status} from the receiver (only 2xx counts as delivered)")


def _record(repo: WebhookRepo, sent: _Sent, now: datetime) -> Attempt:
    claimed = sent.claimed
    if sent.error is None:
        assert sent.http_status is not None
        repo.record_delivered(claimed.id, sent.http_status, at=now)
        outcome = "delivered"
    else:
        status = repo.record_failed(claimed.id, claimed.attempt, sent.http_status, sent.error)
        outcome = "failed" if status is DeliveryStatus.FAILED else "retrying"
        (log.warning if outcome == "failed" else log.info)(
            "webhook %s: delivery %s (event %s) attempt %s %s: %s",
            claimed.webhook_id,
            claimed.id,
            claimed.event.sequence,
            claimed.attempt,
            "failed, giving up" if outcome == "failed" else "failed, will retry",
            sent.error,
        )
    return Attempt(
        claimed.id,
        claimed.webhook_id,
        claimed.event.sequence,
        claimed.event.action,
        claimed.attempt,
        outcome,
        sent.http_status,
        sent.error,
    )


def _found(record: WebhookRecord | None, webhook_id: int) -> WebhookRecord:
    if record is None:
        raise NotFound(f"webhook {webhook_id}", "list webhooks with `charter webhook list`")
    return record

"""Webhooks: the outbox is written with the event, deliveries are signed, retried with back-off, and
given up after the last attempt; a real HTTP receiver on loopback, the injected clock, both engines."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from charter.clock import ManualClock
from charter.domain.webhooks import MAX_ATTEMPTS, parse_patterns, retry_delay
from charter.errors import InvalidInput, MissingRole, NotFound
from charter.service.registry import Registry
from charter.storage.schema import webhook_outbox
from charter.storage.webhooks import WebhookRepo, operational
from tests.cli_runner import Cli
from tests.conftest import add_user


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers with the next queued status
    (200 once the queue is empty)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            target = state[0]
            with target.lock:
                target.requests.append(Received(dict(self.headers.items()), body))
            self.send_response(target.answer())
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # two deliverers send up to 20 requests at once

    server = Server(("127.0.0.1", 0), Handler)
    state.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state[0]
    server.shutdown()
    server.server_close()


def _outbox(registry: Registry) -> list[tuple[int, int, str]]:
    """(webhook, sequence, status) of every outbox row."""
    with registry.store.read() as tx:
        rows = tx.conn.execute(
            sa.select(
                webhook_outbox.c.webhook_id, webhook_outbox.c.sequence, webhook_outbox.c.status
            ).order_by(webhook_outbox.c.id)
        )
        return [(int(r.webhook_id), int(r.sequence), r.status) for r in rows]


def _verify(secret: str, received: Received) -> bool:
    """What a receiver does (docs/operations.md), with the standard library only."""
    timestamp = received.headers["X-Charter-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(received.headers["X-Charter-Signature"], f"sha256={expected}")


def test_events_are_delivered_signed_with_the_audit_log_fields(
    registry: Registry, receiver: Receiver, clock: ManualClock
) -> None:
    created = registry.webhooks.add(receiver.url, "user.*")
    assert created.secret is not None and len(created.secret) >= 32
    add_user(registry, "bob", "author")
    registry.users.change_roles("bob", add=["reviewer"])

    report = registry.webhooks.deliver_due()

    assert report.count("delivered") == 2 and report.count("retrying") == 0
    assert len(receiver.requests) == 2
    events = {e.sequence: e.as_dict() for e in registry.audit.log()}
    for received in sorted(receiver.requests, key=lambda r: int(r.headers["X-Charter-Delivery"])):
        assert _verify(created.secret, received)
        body = received.json()
        assert body == {
            **events[body["sequence"]],
            "delivery": body["delivery"],
            "webhook": created.webhook.id,
        }
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["X-Charter-Event"] == body["action"]
        assert received.headers["X-Charter-Delivery"] == str(body["delivery"])
        assert received.headers["X-Charter-Timestamp"] == str(int(clock.now().timestamp()))
        assert not _verify("another secret of sufficient length", received)
    arrived = sorted(r.json()["sequence"] for r in receiver.requests)  # sent in parallel: any order
    assert [events[s]["action"] for s in arrived] == ["user.added", "user.roles_changed"]
    status = registry.webhooks.deliveries(created.webhook.id)
    assert status.counts == {"pending": 0, "delivered": 2, "failed": 0}
    assert all(d.last_status == 200 and d.delivered_at == clock.now() for d in status.deliveries)
    assert status.last_attempt is not None and status.last_attempt.last_attempt_at == clock.now()
    assert registry.webhooks.deliver_due().attempts == ()  # nothing is sent twice


def test_a_given_secret_signs_and_is_never_in_the_ledger_or_listings(
    registry: Registry, receiver: Receiver
) -> None:
    secret = "s3cret-shared-with-the-receiver"
    created = registry.webhooks.add(receiver.url, "webhook.*", secret=secret)
    assert created.secret is None  # nothing to show: the caller chose it
    registry.webhooks.deliver_due()
    assert _verify(secret, receiver.requests[0])
    assert receiver.requests[0].json()["action"] == "webhook.added"  # its own creation is announced
    ledger = json.dumps([e.as_dict() for e in registry.audit.log()])
    assert secret not in ledger and '"secret": "given"' in ledger
    assert secret not in json.dumps([w.as_dict() for w in registry.webhooks.list()])


def test_a_failed_delivery_is_retried_after_the_back_off(
    registry: Registry, receiver: Receiver, clock: ManualClock
) -> None:
    hook = registry.webhooks.add(receiver.url, "user.added").webhook
    add_user(registry, "bob", "viewer")
    receiver.statuses = [500]
    first = registry.webhooks.deliver_due()
    assert [(a.outcome, a.http_status) for a in first.attempts] == [("retrying", 500)]
    delivery = first.attempts[0].delivery
    pending = registry.webhooks.deliveries(hook.id, status="pending").deliveries[0]
    assert pending.attempts == 1 and pending.last_status == 500 and "HTTP 500" in (pending.last_error or "")
    assert pending.last_attempt_at == clock.now()
    assert pending.next_attempt_at == clock.now() + retry_delay(delivery, 1)

    clock.advance(retry_delay(delivery, 1) - timedelta(seconds=1))
    assert registry.webhooks.deliver_due().attempts == ()  # not due yet: no sleeping, no early retry
    clock.advance(timedelta(seconds=1))
    second = registry.webhooks.deliver_due()
    assert [(a.outcome, a.attempt) for a in second.attempts] == [("delivered", 2)]
    assert [r.headers["X-Charter-Delivery"] for r in receiver.requests] == [str(delivery)] * 2
    status = registry.webhooks.deliveries(hook.id)
    assert status.counts == {"pending": 0, "delivered": 1, "failed": 0}
    assert status.deliveries[0].last_error is None and status.deliveries[0].last_status == 200


def test_back_off_grows_to_an_hour_and_the_delivery_fails_after_the_last_attempt(
    registry: Registry, receiver: Receiver, clock: ManualClock
) -> None:
    hook = registry.webhooks.add(receiver.url, "user.added").webhook
    add_user(registry, "bob", "viewer")
    receiver.statuses = [503] * MAX_ATTEMPTS
    delays = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = registry.webhooks.deliver_due()
        assert [a.attempt for a in report.attempts] == [attempt]
        row = registry.webhooks.deliveries(hook.id).deliveries[0]
        if attempt < MAX_ATTEMPTS:
            assert report.attempts[0].outcome == "retrying"
            assert row.next_attempt_at is not None
            delays.append((row.next_attempt_at - clock.now()).total_seconds())
            clock.set(row.next_attempt_at)
    assert report.attempts[0].outcome == "failed"
    expected = [min(10 * 3**n, 3600) for n in range(MAX_ATTEMPTS - 1)]
    assert all(0.9 * e <= d <= 1.1 * e for d, e in zip(delays, expected, strict=True)), delays
    assert delays[:3] == sorted(delays[:3]) and max(delays) <= 3960
    status = registry.webhooks.deliveries(hook.id)
    assert status.counts == {"pending": 0, "delivered": 0, "failed": 1}
    assert status.deliveries[0].attempts == MAX_ATTEMPTS and status.deliveries[0].next_attempt_at is None
    clock.advance(timedelta(days=1))
    assert registry.webhooks.deliver_due().attempts == ()
    assert len(receiver.requests) == MAX_ATTEMPTS


def test_an_unreachable_receiver_is_a_recorded_failure(registry: Registry, receiver: Receiver) -> None:
    hook = registry.webhooks.add("http://127.0.0.1:9/nothing-listens-here", "user.*").webhook
    add_user(registry, "bob", "viewer")
    report = registry.webhooks.deliver_due()
    assert [a.outcome for a in report.attempts] == ["retrying"]
    last = registry.webhooks.deliveries(hook.id).last_attempt
    assert last is not None and last.last_status is None and "ConnectError" in (last.last_error or "")


def test_patterns_choose_the_events_each_webhook_gets(registry: Registry, receiver: Receiver) -> None:
    models = registry.webhooks.add(receiver.url, "model.*, user.added").webhook
    users = registry.webhooks.add(receiver.url, "user.*").webhook
    everything = registry.webhooks.add(receiver.url, "*").webhook
    add_user(registry, "bob", "viewer")
    registry.users.disable("bob")
    seq = {e.action: e.sequence for e in registry.audit.log()}
    rows = set(_outbox(registry))
    assert {(w, s) for w, s, _ in rows} == {
        (models.id, seq["user.added"]),
        (users.id, seq["user.added"]),
        (users.id, seq["user.disabled"]),
        (everything.id, seq["webhook.added"]),  # `*` sees its own creation (the last webhook.added)
        (everything.id, seq["user.added"]),
        (everything.id, seq["user.disabled"]),
    }


def test_a_removed_webhook_gets_nothing_new_and_its_pending_deliveries_are_given_up(
    registry: Registry, receiver: Receiver
) -> None:
    keep = registry.webhooks.add(receiver.url, "user.*").webhook
    gone = registry.webhooks.add(receiver.url, "user.*").webhook
    add_user(registry, "bob", "viewer")
    removed = registry.webhooks.remove(gone.id)
    assert not removed.active and removed.removed_by == "admin"
    add_user(registry, "carol", "viewer")
    assert [w.id for w in registry.webhooks.list()] == [keep.id]
    assert [w.id for w in registry.webhooks.list(include_removed=True)] == [keep.id, gone.id]
    status = registry.webhooks.deliveries(gone.id)
    assert status.counts == {"pending": 0, "delivered": 0, "failed": 1}
    assert "removed" in (status.deliveries[0].last_error or "")
    assert registry.webhooks.remove(gone.id) == removed  # idempotent, no second event
    assert [e.action for e in registry.audit.log()].count("webhook.removed") == 1
    report = registry.webhooks.deliver_due()
    assert {a.webhook for a in report.attempts} == {keep.id} and report.count("delivered") == 2


def test_a_rolled_back_transaction_leaves_no_outbox_row(registry: Registry, receiver: Receiver) -> None:
    registry.webhooks.add(receiver.url, "*")
    before = _outbox(registry)
    with pytest.raises(RuntimeError), registry.store.write() as tx:
        tx.ledger.append("admin", "user.added", "user:ghost", {"roles": ["viewer"]})
        assert len(_rows_in(tx.conn)) == len(before) + 1  # written inside the transaction …
        raise RuntimeError("the use case failed after appending its event")
    assert _outbox(registry) == before  # … and gone with it
    assert registry.audit.verify().ok


def _rows_in(conn: sa.Connection) -> list[Any]:
    return list(conn.execute(sa.select(webhook_outbox.c.id)))


def test_a_deliverer_that_dies_mid_attempt_is_retried_at_least_once(
    registry: Registry, receiver: Receiver, clock: ManualClock
) -> None:
    hook = registry.webhooks.add(receiver.url, "user.added").webhook
    add_user(registry, "bob", "viewer")
    with operational(registry.store.engine) as conn:  # claimed, then the process "crashed"
        claimed, _ = WebhookRepo(conn).claim_due(clock.now(), 10)
    assert len(claimed) == 1
    assert registry.webhooks.deliver_due().attempts == ()  # still claimed: nobody sends it twice
    clock.advance(retry_delay(claimed[0].id, 1))
    report = registry.webhooks.deliver_due()
    assert [(a.delivery, a.attempt, a.outcome) for a in report.attempts] == [(claimed[0].id, 2, "delivered")]
    assert registry.webhooks.deliveries(hook.id).counts["delivered"] == 1


def test_a_final_attempt_that_never_reported_back_is_failed(
    registry: Registry, receiver: Receiver, clock: ManualClock
) -> None:
    hook = registry.webhooks.add(receiver.url, "user.added").webhook
    add_user(registry, "bob", "viewer")
    with registry.store.engine.begin() as conn:
        conn.execute(sa.update(webhook_outbox).values(attempts=MAX_ATTEMPTS))
    report = registry.webhooks.deliver_due()
    assert report.attempts == () and report.abandoned == 1 and report.as_dict()["failed"] == 1
    assert receiver.requests == []
    row = registry.webhooks.deliveries(hook.id).deliveries[0]
    assert row.status.value == "failed" and "no outcome was recorded" in (row.last_error or "")


def test_two_deliverers_never_send_the_same_delivery(
    registry: Registry, receiver: Receiver, settings: Any, clock: ManualClock
) -> None:
    from charter.service.setup import open_registry

    registry.webhooks.add(receiver.url, "user.*")
    registry.webhooks.add(receiver.url, "user.*")
    for n in range(15):
        add_user(registry, f"user{n}", "viewer")
    others = [open_registry(settings, clock=clock) for _ in range(2)]
    try:
        reports: list[Any] = []
        threads = [
            threading.Thread(target=lambda r=r: reports.append(r.webhooks.deliver_due())) for r in others
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for other in others:
            other.close()
    ids = [r.headers["X-Charter-Delivery"] for r in receiver.requests]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert sum(r.count("delivered") for r in reports) == 30


def test_input_is_validated_and_only_admins_manage_webhooks(registry: Registry, receiver: Receiver) -> None:
    for url in ("ftp://example.com/x", "example.com/hook", "http:///path", "https://u:p@example.com/h"):
        with pytest.raises(InvalidInput):
            registry.webhooks.add(url, "*")
    for events in ("", "model.*,", "Model.*", "model promoted", "[ab]"):
        with pytest.raises(InvalidInput):
            registry.webhooks.add(receiver.url, events)
    with pytest.raises(InvalidInput, match="16 to 200"):
        registry.webhooks.add(receiver.url, "*", secret="short")
    with pytest.raises(InvalidInput, match="accepted: pending, delivered, failed"):
        registry.webhooks.deliveries(1, status="sent")
    assert parse_patterns("model.*, rollout.* ,model.*") == ("model.*", "rollout.*")
    viewer = add_user(registry, "vera", "operator")
    with pytest.raises(MissingRole):
        viewer.webhooks.add(receiver.url, "*")
    with pytest.raises(MissingRole):
        viewer.webhooks.deliver_due()
    with pytest.raises(NotFound):
        registry.webhooks.remove(42)
    assert registry.webhooks.list() == []
    assert [e.action for e in registry.audit.log()][-1] == "user.added"  # nothing else was written


def test_finished_deliveries_of_old_events_are_pruned_and_pending_ones_kept(
    registry: Registry, receiver: Receiver, clock: ManualClock
) -> None:
    hook = registry.webhooks.add(receiver.url, "user.*").webhook.id
    add_user(registry, "bob", "viewer")
    doomed = registry.webhooks.add(receiver.url, "user.*").webhook.id
    add_user(registry, "carol", "viewer")
    registry.webhooks.remove(doomed)  # carol's delivery to it is given up: failed
    registry.webhooks.deliver_due()
    clock.advance(timedelta(days=20))
    add_user(registry, "dave", "viewer")
    registry.webhooks.deliver_due()
    assert registry.webhooks.deliveries(hook).counts == {"pending": 0, "delivered": 3, "failed": 0}
    assert registry.webhooks.deliveries(doomed).counts == {"pending": 0, "delivered": 0, "failed": 1}
    ledger = len(registry.audit.log())
    clock.advance(timedelta(days=15))  # bob's and carol's events are 35 days old, dave's 15

    report = registry.webhooks.prune()

    assert report.deleted == 3 and report.before == clock.now() - timedelta(days=30)
    assert registry.webhooks.deliveries(hook).counts == {"pending": 0, "delivered": 1, "failed": 0}
    assert registry.webhooks.deliveries(doomed).counts == {"pending": 0, "delivered": 0, "failed": 0}
    assert len(registry.audit.log()) == ledger  # operational data: the ledger does not change
    assert registry.webhooks.prune().deleted == 0
    add_user(registry, "erin", "viewer")  # a pending delivery, never pruned however old
    clock.advance(timedelta(days=400))
    assert registry.webhooks.prune(older_than=timedelta(days=1)).deleted == 1  # dave's
    assert registry.webhooks.deliveries(hook).counts == {"pending": 1, "delivered": 0, "failed": 0}
    with pytest.raises(InvalidInput, match="positive"):
        registry.webhooks.prune(older_than=timedelta(0))
    with pytest.raises(MissingRole):
        registry.as_user("bob").webhooks.prune()


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("CHARTER_USER", "alice")
    monkeypatch.delenv("CHARTER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return Cli(capsys, monkeypatch)


def test_the_webhook_commands(cli: Cli, receiver: Receiver) -> None:
    cli("init")
    assert cli("webhook", "add", "gopher://x", "--events", "*").code == 1
    added = cli("webhook", "add", receiver.url, "--events", "user.*,webhook.*")
    assert added.code == 0 and "secret (shown only now): " in added.out
    secret = added.out.split("secret (shown only now): ")[1].split()[0]
    listed = cli("webhook", "list", "--json")
    assert listed.code == 0 and secret not in listed.out
    hook = listed.json()[0]
    assert hook["events"] == ["user.*", "webhook.*"] and hook["active"]
    cli("user", "add", "bob", "--role", "viewer")
    delivered = cli("webhook", "deliver", "--json")
    assert delivered.code == 0 and delivered.json()["delivered"] == 2
    assert all(_verify(secret, r) for r in receiver.requests)
    status = cli("webhook", "deliveries", str(hook["id"]), "--status", "delivered", "--json").json()
    assert status["counts"]["delivered"] == 2 and len(status["deliveries"]) == 2
    assert status["last_attempt"]["last_status"] == 200
    assert "delivered" in cli("webhook", "deliveries", str(hook["id"])).out
    assert cli("webhook", "remove", str(hook["id"]), user="bob").code == 5
    assert cli("webhook", "remove", "99", user="alice").code == 3
    assert cli("webhook", "remove", str(hook["id"])).code == 0
    assert cli("webhook", "list", "--json").json() == []
    log = cli("audit", "log", "--json").json()
    pruned = cli("webhook", "prune", "--older-than", "1d", "--json")
    assert pruned.code == 0 and pruned.json()["deleted"] == 0
    assert cli("webhook", "prune", "--older-than", "soon").code == 1
    assert [e["action"] for e in log if e["action"].startswith("webhook.")] == [
        "webhook.added",
        "webhook.removed",
    ]
    assert secret not in json.dumps(log)

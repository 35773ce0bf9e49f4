"""API tokens on both engines: created once, stored hashed, checked cheaply, refused once revoked."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from charter.clock import ManualClock
from charter.config import Settings
from charter.errors import InvalidInput, MissingRole, NotFound, Refused, Unauthenticated
from charter.service.registry import Registry
from charter.service.setup import open_registry
from charter.storage.schema import api_tokens, audit_events
from charter.storage.store import Tx
from tests.cli_runner import Cli
from tests.conftest import ADMIN, add_user


def _ledger_text(registry: Registry) -> str:
    return json.dumps([e.as_dict() for e in registry.audit.log()])


def test_a_token_is_created_once_and_authenticates_as_its_user(registry: Registry) -> None:
    add_user(registry, "ci", "author")
    created = registry.tokens.create("ci", name="github actions")
    assert created.secret.startswith("chtr_") and len(created.secret) == 5 + 43
    assert created.secret not in repr(created)
    assert created.status == "active" and created.expires_at == created.created_at + timedelta(days=90)
    assert registry.tokens.authenticate(created.secret) == "ci"
    listed = registry.tokens.list()
    assert [(t.id, t.user, t.name, t.status) for t in listed] == [
        (created.id, "ci", "github actions", "active")
    ]
    assert "secret" not in listed[0].as_dict() and "digest" not in listed[0].as_dict()


def test_only_the_sha256_of_the_secret_is_stored(registry: Registry) -> None:
    add_user(registry, "ci", "author")
    created = registry.tokens.create("ci")
    with registry.store.engine.connect() as conn:
        row = conn.execute(sa.select(api_tokens)).one()
    assert row.digest == hashlib.sha256(created.secret.encode()).hexdigest()
    assert created.secret not in json.dumps([str(v) for v in row])


def test_the_secret_and_its_digest_never_reach_the_ledger(registry: Registry) -> None:
    add_user(registry, "ci", "author")
    created = registry.tokens.create("ci", name="deploy")
    registry.tokens.authenticate(created.secret)
    registry.tokens.revoke(created.id, reason="rotated")
    digest = hashlib.sha256(created.secret.encode()).hexdigest()
    with registry.store.engine.connect() as conn:
        stored = json.dumps([[r.payload, r.evidence] for r in conn.execute(sa.select(audit_events))])
    for text in (stored, _ledger_text(registry)):
        assert created.secret not in text and created.secret[5:] not in text and digest not in text
    events = [e for e in registry.audit.log() if e.action.startswith("token.")]
    assert [(e.action, e.subject) for e in events] == [
        ("token.created", "user:ci"),
        ("token.revoked", "user:ci"),
    ]
    assert events[0].payload == {
        "token": created.id,
        "user": "ci",
        "name": "deploy",
        "purpose": "api",
        "expires_at": created.expires_at.isoformat() if created.expires_at else None,
    }
    assert events[1].payload["reason"] == "rotated"
    assert registry.audit.verify().ok


def test_an_expired_token_is_refused_even_when_cached(registry: Registry, clock: ManualClock) -> None:
    add_user(registry, "app", "service")
    short = registry.tokens.create("app", expires=timedelta(hours=1))
    forever = registry.tokens.create("app", expires=None)
    assert registry.tokens.authenticate(short.secret) == "app"  # now cached
    clock.advance(timedelta(minutes=59))
    assert registry.tokens.authenticate(short.secret) == "app"
    clock.advance(timedelta(minutes=1))
    with pytest.raises(Unauthenticated, match="expired"):
        registry.tokens.authenticate(short.secret)
    clock.advance(timedelta(days=3650))
    assert registry.tokens.authenticate(forever.secret) == "app"
    assert {t.id: t.status for t in registry.tokens.list("app")} == {
        short.id: "expired",
        forever.id: "active",
    }
    assert forever.as_dict()["expires_at"] is None


def test_revoking_refuses_the_token_on_the_next_request(registry: Registry) -> None:
    add_user(registry, "app", "service")
    created = registry.tokens.create("app")
    assert registry.tokens.authenticate(created.secret) == "app"  # warm the cache
    revoked = registry.tokens.revoke(created.id, reason="leaked")
    assert revoked.status == "revoked" and revoked.revoked_by == ADMIN
    with pytest.raises(Unauthenticated, match="revoked"):
        registry.tokens.authenticate(created.secret)
    with pytest.raises(Refused, match="already revoked"):
        registry.tokens.revoke(created.id)
    with pytest.raises(NotFound):
        registry.tokens.revoke(created.id + 100)


def test_a_revocation_by_another_process_is_seen_at_once(registry: Registry, settings: Settings) -> None:
    add_user(registry, "app", "service")
    created = registry.tokens.create("app")
    assert registry.tokens.authenticate(created.secret) == "app"
    other = open_registry(settings, clock=ManualClock(), user=ADMIN)  # its own engine and pool
    try:
        other.tokens.revoke(created.id)
    finally:
        other.close()
    with pytest.raises(Unauthenticated, match="revoked"):
        registry.tokens.authenticate(created.secret)


def test_a_disabled_users_tokens_are_refused_until_enabled(registry: Registry) -> None:
    add_user(registry, "app", "service")
    created = registry.tokens.create("app")
    assert registry.tokens.authenticate(created.secret) == "app"
    registry.users.disable("app")
    with pytest.raises(Unauthenticated, match="disabled"):
        registry.tokens.authenticate(created.secret)
    with pytest.raises(Refused, match="enable it first"):
        registry.tokens.create("app")
    registry.users.enable("app")
    assert registry.tokens.authenticate(created.secret) == "app"


def test_unknown_and_malformed_secrets_are_refused_without_echoing_them(registry: Registry) -> None:
    add_user(registry, "app", "service")
    real = registry.tokens.create("app").secret
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for secret in (forged, "not-a-token", "", "chtr_" + "x" * 300):
        with pytest.raises(Unauthenticated) as refused:
            registry.tokens.authenticate(secret)
        if secret:
            assert secret not in refused.value.message and secret not in json.dumps(refused.value.as_dict())


def test_authenticate_reads_once_then_answers_from_the_cache_and_never_writes(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(registry, "app", "service")
    created = registry.tokens.create("app")
    head = registry.audit.verify().events
    reads = 0
    original = registry.store.read

    @contextmanager
    def counting_read() -> Iterator[Tx]:
        nonlocal reads
        reads += 1
        with original() as tx:
            yield tx

    def no_write() -> None:
        raise AssertionError("authenticate must not write")

    monkeypatch.setattr(registry.store, "read", counting_read)
    monkeypatch.setattr(registry.store, "write", no_write)
    for _ in range(5):
        assert registry.tokens.authenticate(created.secret) == "app"
    assert reads == 1
    monkeypatch.undo()
    assert registry.audit.verify().events == head
    with registry.store.engine.connect() as conn:
        assert conn.execute(sa.select(api_tokens.c.last_used_at)).scalar_one() is None


def test_the_digest_is_compared_in_constant_time(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    add_user(registry, "app", "service")
    created = registry.tokens.create("app")
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", spy)
    registry.tokens.authenticate(created.secret)
    digest = hashlib.sha256(created.secret.encode()).hexdigest()
    assert compared and all(pair == (digest, digest) for pair in compared)


def test_only_admins_manage_tokens(registry: Registry) -> None:
    bob = add_user(registry, "bob", "author", "operator", "reviewer")
    created = registry.tokens.create("bob")
    with pytest.raises(MissingRole, match="admin"):
        bob.tokens.create("bob")
    with pytest.raises(MissingRole):
        bob.tokens.list()
    with pytest.raises(MissingRole):
        bob.tokens.revoke(created.id)
    assert registry.tokens.authenticate(created.secret) == "bob"


def test_bad_requests_name_what_would_be_accepted(registry: Registry) -> None:
    with pytest.raises(NotFound, match="user 'ghost'"):
        registry.tokens.create("ghost")
    with pytest.raises(InvalidInput, match="positive"):
        registry.tokens.create(ADMIN, expires=timedelta(0))
    with pytest.raises(InvalidInput, match="at most 100"):
        registry.tokens.create(ADMIN, name="x" * 101)
    with pytest.raises(NotFound):
        registry.tokens.list("ghost")
    assert registry.tokens.list() == []


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli(
    registry: Registry,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(settings.home))
    monkeypatch.setenv("CHARTER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CHARTER_USER", ADMIN)
    monkeypatch.chdir(tmp_path)
    add_user(registry, "ci", "author")
    return Cli(capsys, monkeypatch)


def test_cli_prints_the_secret_once_with_a_warning(cli: Cli, registry: Registry) -> None:
    run = cli("token", "create", "ci", "--name", "pipeline", "--expires", "30d")
    assert run.code == 0
    secret = run.out.strip()
    assert secret.startswith("chtr_") and "\n" not in secret
    assert "will not be shown again" in run.err
    assert registry.tokens.authenticate(secret) == "ci"
    listed = cli("token", "list", "--json")
    assert secret not in listed.out
    assert [(t["user"], t["name"], t["status"]) for t in listed.json()] == [("ci", "pipeline", "active")]


def test_cli_json_create_list_and_revoke(cli: Cli, registry: Registry) -> None:
    created = cli("token", "create", "ci", "--expires", "never", "--json").json()
    assert created["expires_at"] is None and created["secret"].startswith("chtr_")
    assert [t["id"] for t in cli("token", "list", "--user", "ci", "--json").json()] == [created["id"]]
    assert cli("token", "list", "--user", ADMIN, "--json").json() == []
    revoked = cli("token", "revoke", str(created["id"]), "--reason", "rotated", "--json")
    assert revoked.code == 0 and revoked.json()["status"] == "revoked"
    again = cli("token", "revoke", str(created["id"]))
    assert again.code == 4 and "already revoked" in again.err
    with pytest.raises(Unauthenticated):
        registry.tokens.authenticate(created["secret"])


def test_cli_exit_codes(cli: Cli) -> None:
    assert cli("token", "create", "ci", "--expires", "soon").code == 1
    assert cli("token", "create", "ghost").code == 3
    assert cli("token", "revoke", "999").code == 3
    denied = cli("token", "create", "ci", user="ci")
    assert denied.code == 5 and "admin role" in denied.err
    assert cli("token", "list", user="ci").code == 5


def test_a_signin_link_is_redeemed_once_for_a_session_token(registry: Registry) -> None:
    add_user(registry, "vic", "viewer")
    link = registry.tokens.create_signin_link("vic")
    assert link.purpose == "signin-link" and link.expires_at == link.created_at + timedelta(hours=1)
    with pytest.raises(Unauthenticated, match="one-time web sign-in link"):
        registry.tokens.authenticate(link.secret)  # never an API token
    user, session = registry.tokens.redeem_signin_link(link.secret, session_lifetime=timedelta(hours=12))
    assert user == "vic" and session.purpose == "web-session" and session.secret != link.secret
    assert registry.tokens.authenticate(session.secret) == "vic"
    before = _ledger_text(registry)
    with pytest.raises(Unauthenticated, match="already used"):
        registry.tokens.redeem_signin_link(link.secret, session_lifetime=timedelta(hours=12))
    assert _ledger_text(registry) == before  # a refused redemption writes nothing
    assert session.secret not in before and link.secret not in before
    statuses = {t.id: (t.purpose, t.status) for t in registry.tokens.list("vic")}
    assert statuses == {link.id: ("signin-link", "revoked"), session.id: ("web-session", "active")}
    # signing out ends a web session for good; an API token is left alone
    api = registry.tokens.create("vic")
    assert registry.tokens.end_session(api.secret) is False
    assert registry.tokens.end_session(session.secret) is True
    assert registry.tokens.end_session(session.secret) is False
    with pytest.raises(Unauthenticated, match="revoked"):
        registry.tokens.authenticate(session.secret)
    assert registry.tokens.authenticate(api.secret) == "vic"


def test_a_signin_link_refuses_what_is_not_a_live_link(registry: Registry, clock: ManualClock) -> None:
    add_user(registry, "vic", "viewer")
    api = registry.tokens.create("vic")
    lifetime = timedelta(hours=12)
    with pytest.raises(Unauthenticated, match="not a sign-in link"):
        registry.tokens.redeem_signin_link(api.secret, session_lifetime=lifetime)
    with pytest.raises(Unauthenticated, match="not known"):
        registry.tokens.redeem_signin_link("chtr_" + "x" * 43, session_lifetime=lifetime)
    with pytest.raises(Unauthenticated, match="not a charter sign-in link"):
        registry.tokens.redeem_signin_link("hello", session_lifetime=lifetime)
    with pytest.raises(MissingRole):
        registry.as_user("vic").tokens.create_signin_link(ADMIN)
    disabled = registry.tokens.create_signin_link("vic")
    registry.users.disable("vic")
    with pytest.raises(Unauthenticated, match="disabled"):
        registry.tokens.redeem_signin_link(disabled.secret, session_lifetime=lifetime)
    expired = registry.tokens.create_signin_link(ADMIN)
    clock.advance(timedelta(minutes=61))
    with pytest.raises(Unauthenticated, match="expired"):
        registry.tokens.redeem_signin_link(expired.secret, session_lifetime=lifetime)

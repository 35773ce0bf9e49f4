"""`charter init`, users, the audit ledger and policies from the command line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.cli_runner import Cli


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("CHARTER_USER", "alice")
    monkeypatch.delenv("CHARTER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return Cli(capsys, monkeypatch)


def test_commands_before_init_explain_what_to_do(cli: Cli) -> None:
    run = cli("user", "list")
    assert run.code == 1
    assert "charter init" in run.err
    assert "Traceback" not in run.err


def test_init_is_idempotent_and_grants_the_first_user_every_role(cli: Cli) -> None:
    first = cli("init", "--json")
    assert first.code == 0 and first.json()["admin"] == "alice"
    again = cli("init", "--json", user="bob")
    assert again.code == 0 and again.json()["admin"] is None and not again.json()["created"]
    users = cli("user", "list", "--json", user="alice").json()
    assert [u["name"] for u in users] == ["alice"]
    assert set(users[0]["roles"]) == {"viewer", "service", "author", "reviewer", "operator", "admin"}


def test_exit_codes_follow_the_contract(cli: Cli) -> None:
    cli("init")
    assert cli("user", "add", "bob", "--role", "reviewer").code == 0
    assert cli("user", "add", "carol", "--role", "root").code == 1  # invalid input
    assert cli("user", "roles", "nobody").code == 3  # not found
    denied = cli("user", "add", "carol", "--role", "viewer", user="bob")
    assert denied.code == 5 and "admin role" in denied.err  # permission denied
    assert cli("user", "add", user="alice").code == 2  # usage
    unknown = cli("user", "list", user="mallory")
    assert unknown.code == 5 and "not registered" in unknown.err


def test_errors_are_json_too_when_asked(cli: Cli) -> None:
    cli("init")
    run = cli("user", "roles", "nobody", "--json")
    assert run.code == 3
    assert run.json()["error"] == "NotFound"


def test_roles_change_and_disable_are_audited(cli: Cli) -> None:
    cli("init")
    cli("user", "add", "bob", "--role", "author")
    assert cli("user", "roles", "bob", "--add", "reviewer", "--remove", "author", "--json").json()[
        "roles"
    ] == ["reviewer"]
    assert cli("user", "disable", "bob").code == 0
    assert cli("user", "list", user="bob").code == 5
    actions = [e["action"] for e in cli("audit", "log", "--json", user="alice").json()]
    assert actions == ["store.initialised", "user.added", "user.roles_changed", "user.disabled"]
    only_bob = cli("audit", "log", "--subject", "user:bob", "--json").json()
    assert {e["subject"] for e in only_bob} == {"user:bob"}


def test_the_last_admin_cannot_be_removed(cli: Cli) -> None:
    cli("init")
    run = cli("user", "roles", "alice", "--remove", "admin")
    assert run.code == 1 and "last enabled admin" in run.err


def test_audit_verify_exits_non_zero_naming_the_bad_event(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    cli("user", "add", "bob", "--role", "author")
    cli("user", "add", "carol", "--role", "author")
    ok = cli("audit", "verify", "--json")
    assert ok.code == 0 and ok.json()["ok"] and ok.json()["events"] == 3
    with sqlite3.connect(tmp_path / "store" / "charter.db") as db:
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE sequence = 2")
    bad = cli("audit", "verify")
    assert bad.code == 4
    assert "event 2" in bad.out


def test_policy_apply_show_and_history(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    assert cli("policy", "show", "--json").json()["version"] == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text("pins:\n  allow: ['^my-model-[a-z]+$']\n")
    applied = cli("policy", "apply", str(policy), "--json")
    assert applied.code == 0 and applied.json()["version"] == 1
    assert cli("policy", "show", "--json").json()["document"]["pins"]["allow"] == ["^my-model-[a-z]+$"]
    policy.write_text("colours: {}\n")
    refused = cli("policy", "apply", str(policy))
    assert refused.code == 1 and "accepted: pins, contamination" in refused.err
    assert len(cli("policy", "history", "--json").json()) == 1


def test_help_is_available_for_every_group(cli: Cli) -> None:
    for group in ("user", "audit", "policy", "db", "dataset", "model"):
        run = cli(group, "--help")
        assert run.code == 0 and "Usage" in run.out

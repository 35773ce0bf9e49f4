"""`charter model …` in a temporary CHARTER_HOME: exit codes, tables and `--json`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import charter
from tests.cli_runner import Cli
from tests.test_model_service import api_spec, seed_dataset

SPEC = {k: v for k, v in api_spec().items() if k not in ("description", "tags")}


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("CHARTER_USER", "alice")
    monkeypatch.delenv("CHARTER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    run = Cli(capsys, monkeypatch)
    assert run("init").code == 0
    assert run("user", "add", "bob", "--role", "reviewer").code == 0
    return run


def seed(name: str, role: str) -> str:
    with charter.open(user="alice") as registry:
        return seed_dataset(registry, name, role, actor="alice")


def test_register_from_a_file_or_from_flags(cli: Cli) -> None:
    first = cli("model", "register", "support", "-f", "spec.yaml", "--json")
    assert first.code == 0, first.err
    assert first.json()["ref"] == "support@1.0.0"
    flags = cli(
        "model", "register", "support", "--family", "gpt-4o", "--provider", "openai",
        "--provider-model", "gpt-4o-2024-11-20", "--serving", "temperature=0.2",
        "--serving", "max_tokens=512", "--tag", "canary", "--json",
    )  # fmt: skip
    assert flags.code == 0, flags.err
    assert flags.json()["version"] == "1.1.0" and flags.json()["spec"]["serving"]["max_tokens"] == 512
    assert cli("model", "register", "support", "-f", "spec.yaml", "--family", "x").code == 1
    assert cli("model", "register", "support", "-f", "spec.yaml").code == 4  # identical spec
    assert cli("model", "register", "support", "-f", "spec.yaml", "--version", "1.0.1").code == 4
    unpinned = cli(
        "model", "register", "other", "--family", "gpt", "--provider", "openai", "--provider-model", "gpt-4o"
    )
    assert unpinned.code == 4 and "not pinned" in unpinned.err and "Traceback" not in unpinned.err
    assert cli("model", "register", "other", "--family", "gpt").code == 1  # no source
    assert cli("model", "register", "other", "-f", "missing.yaml").code == 1
    assert cli("model", "register", "support", "-f", "spec.yaml", "--version", "one").code == 1


def test_reading_commands_print_tables_and_json(cli: Cli) -> None:
    cli("model", "register", "support", "-f", "spec.yaml")
    cli("model", "register", "support", "--family", "gpt-4o", "--provider", "openai",
        "--provider-model", "gpt-4o-2024-11-20")  # fmt: skip
    reads = [
        ("list",),
        ("show", "support"),
        ("versions", "support"),
        ("history", "support"),
        ("diff", "support@1.0.0", "support@1.1.0"),
        ("metrics", "support"),
        ("reviewers", "support"),
    ]
    for args in reads:
        human = cli("model", *args)
        assert human.code == 0 and human.out.strip(), (args, human.err)
        assert cli("model", *args, "--json").code == 0
    assert [m["name"] for m in cli("model", "list", "--json").json()] == ["support"]
    assert [v["version"] for v in cli("model", "versions", "support", "--json").json()] == ["1.0.0", "1.1.0"]
    diff = cli("model", "diff", "support@1.0.0", "support@1.1.0", "--json").json()
    assert diff["required_bump"] == "minor"
    assert "needs a minor bump" in cli("model", "diff", "support@1.0.0", "support@1.1.0").out
    missing = cli("model", "show", "support@9.9.9", "--json")
    assert missing.code == 3 and missing.json()["error"] == "NotFound"
    assert cli("model", "show", "support@", "--json").code == 1


def test_evaluate_sign_off_promote_and_roll_back(cli: Cli) -> None:
    cli("model", "register", "support", "-f", "spec.yaml")
    golden = seed("golden", "holdout")
    metrics = ("--metric", "accuracy=0.9", "--metric", "latency_ms=120")
    evaluated = cli("model", "eval", "support@1.0.0", "--dataset", golden, *metrics, "--json")
    assert evaluated.code == 0 and evaluated.json()["metrics"] == {"accuracy": 0.9, "latency_ms": 120.0}
    assert cli("model", "eval", "support@1.0.0", "--dataset", golden, "--metric", "accuracy=high").code == 1
    own = cli("model", "signoff", "support@1.0.0")
    assert own.code == 5 and "Separation of duties" in own.err
    assert cli("model", "signoff", "support@1.0.0", "--note", "ok", user="bob").code == 0
    assert cli("model", "promote", "support@1.0.0", user="alice").code == 2  # --rollback-plan is required
    assert cli("model", "promote", "support@1.0.0", "--rollback-plan", "x", user="bob").code == 5

    dry = cli(
        "model", "promote", "support@1.0.0", "--rollback-plan", "rules engine", "--dry-run", user="alice"
    )
    assert dry.code == 0 and dry.out.count("PASS") == 4 and "nothing moved" in dry.out
    assert cli("model", "show", "support@production").code == 3
    promoted = cli("model", "promote", "support@1.0.0", "--rollback-plan", "rules engine", "--json")
    assert promoted.code == 0 and promoted.json()["passed"]
    assert cli("model", "show", "support@production", "--json").json()["version"] == "1.0.0"

    cli("model", "register", "support", "--family", "gpt-4o", "--provider", "openai",
        "--provider-model", "gpt-4o-2024-11-20")  # fmt: skip
    refused = cli("model", "promote", "support@1.1.0", "--rollback-plan", "back", "--rollback-to", "1.0.0")
    assert refused.code == 4
    assert refused.out.count("FAIL") == 3 and "PASS rollback_plan" in refused.out
    assert "not promoted: 3 of 4 promotion checks failed" in refused.err
    as_json = cli("model", "promote", "support@1.1.0", "--rollback-plan", "back", "--json")
    assert as_json.code == 4 and as_json.json()["error"] == "GateRefused"
    assert len(as_json.json()["report"]["checks"]) == 4
    dry_refused = cli("model", "promote", "support@1.1.0", "--rollback-plan", "back", "--dry-run", "--json")
    assert dry_refused.code == 4 and dry_refused.json()["passed"] is False

    cli(
        "model",
        "eval",
        "support@1.1.0",
        "--dataset",
        golden,
        "--metric",
        "accuracy=0.95",
        "--metric",
        "latency_ms=99",
    )
    cli("model", "signoff", "support@1.1.0", user="bob")
    ok = cli(
        "model", "promote", "support@1.1.0", "--rollback-plan", "back", "--rollback-to", "1.0.0", user="alice"
    )
    assert ok.code == 0, ok.err
    back = cli("model", "rollback", "support", "--reason", "latency", "--json")
    assert back.code == 0 and (back.json()["from_version"], back.json()["to_version"]) == ("1.1.0", "1.0.0")
    assert cli("model", "rollback", "support").code == 3
    history = cli("model", "history", "support", "--json").json()
    assert [(m["kind"], m["to_version"], m["reason"]) for m in history][-1] == (
        "rollback",
        "1.0.0",
        "latency",
    )
    assert cli("audit", "verify").code == 0


def test_admin_settings_reviewers_and_metrics(cli: Cli) -> None:
    cli("model", "register", "support", "-f", "spec.yaml")
    assert cli("model", "reviewers", "support", "--add", "bob", "--json").json()["reviewers"] == ["bob"]
    assert cli("model", "reviewers", "support", "--add", "nobody").code == 3
    assert cli("model", "reviewers", "support", "--add", "bob", user="bob").code == 5
    declared = cli("model", "metrics", "support", "--set", "f1=higher", "--json", user="alice")
    assert declared.code == 0 and declared.json()["primary_metrics"] == {"f1": "higher"}
    assert cli("model", "metrics", "support", "--set", "f1=up", user="alice").code == 1
    assert cli("model", "metrics", "support", "--set", "f1", user="alice").code == 1


def test_every_command_has_help(cli: Cli) -> None:
    for command in ("register", "list", "show", "versions", "diff", "history", "eval", "signoff", "reviewers",
                    "metrics", "promote", "rollback"):  # fmt: skip
        run = cli("model", command, "--help")
        assert run.code == 0 and "--json" in run.out, command

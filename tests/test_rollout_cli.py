"""`charter slot|release|rollout|incident|route|txn|trace|state|changes` in a temporary CHARTER_HOME:
exit codes, `--json`, and a rollout taken to production and back from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import charter
from charter.clock import ManualClock
from tests.cli_runner import Cli
from tests.test_slot_helpers import World, world

CLI_TRACK: dict[str, Any] = {
    "name": "instant",
    "metrics": {"quality": "higher"},
    "stages": [
        {"name": "shadow", "traffic": 0, "min_duration": "0s", "max_duration": "1h"},
        {"name": "canary", "traffic": 10, "min_duration": "0s", "max_duration": "1h", "criteria": [
            {"kind": "checklist", "items": ["smoke-tested"]}]},
        {"name": "production", "traffic": 100, "rollback_window": "30d"},
    ],
}  # fmt: skip


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("CHARTER_USER", "admin")
    monkeypatch.delenv("CHARTER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    run = Cli(capsys, monkeypatch)
    assert run("init").code == 0
    return run


@pytest.fixture
def w(cli: Cli, tmp_path: Path) -> World:
    registry = charter.open(user="admin")
    built = world(registry, tmp_path, ManualClock())
    (tmp_path / "instant.yaml").write_text(yaml.safe_dump(CLI_TRACK))
    return built


def test_a_rollout_from_the_command_line(cli: Cli, w: World, tmp_path: Path) -> None:
    made = cli("slot", "create", "web", "--policy", "instant.yaml", "--json")
    assert made.code == 0, made.err
    assert made.json()["policy"] == "instant" and made.json()["policy_source"] == "file"
    first = cli("release", "create", "web", "--model", "m@1.0.0", "--prompt", "greet-v1", "--json").json()
    second = cli(
        "release", "create", "web", "--model", "m@1.1.0", "--prompt", "greet-v2", "--param", "max_tokens=700",
        "--param", "stop=[END]", "--app-version", "4f2a9c1", "--json",
    ).json()  # fmt: skip
    assert second["params"] == {"max_tokens": 700, "stop": ["END"]} and second["app_version"] == "4f2a9c1"
    shown = cli("release", "show", second["digest"][:8], "--json").json()
    assert shown["effective_params"]["greet"]["max_tokens"]["source"] == "release"
    assert cli("release", "show", second["digest"][:8]).code == 0
    assert (
        cli("slot", "bootstrap", "web", "--release", first["digest"][:8], "--json").json()["after"]
        == first["digest"]
    )
    again = cli("slot", "bootstrap", "web", "--release", second["digest"][:8], "--json")
    assert again.code == 4 and again.json()["error"] == "Refused"

    plan = "slot rollback"
    started = cli(
        "rollout", "start", "web", "--release", second["digest"][:12], "--rollback-plan", plan, "--json"
    )
    assert started.code == 0, started.err
    assert started.json()["transition"]["to"] == "shadow"
    status = cli("rollout", "status", "web", "--json").json()
    assert status["verdict"]["verdict"] == "pass" and status["routing"]["shadow_sample"] == 1.0
    assert cli("rollout", "status", "web").code == 0
    route = cli("route", "web", "alice", "--json").json()
    assert route["decision"]["shadow"] == second["digest"] and route["decision"]["release"] == first["digest"]
    assert cli("route", "web", "alice").code == 0

    assert cli("rollout", "advance", "web", "--json").json()["transition"]["to"] == "canary"
    refused = cli("rollout", "advance", "web", "--json")
    assert refused.code == 4
    body = refused.json()
    assert body["error"] == "AdvanceRefused" and body["report"]["criteria"][0]["evidence"]["missing"] == [
        "smoke-tested"
    ]
    human = cli("rollout", "advance", "web")
    assert human.code == 4 and "smoke-tested" in human.out and "cannot leave stage canary" in human.err
    assert cli("rollout", "check", "web", "--item", "nope").code == 1
    assert cli("rollout", "check", "web", "--item", "smoke-tested").code == 0
    assert cli("rollout", "approve", "web", user="olga").code == 5  # not a reviewer
    done = cli("rollout", "advance", "web", "--json", user="admin").json()
    assert done["transition"]["action"] == "complete" and set(done["moved"]) == {
        "model:m@1.1.0",
        "prompt:greet-v2",
    }

    record = {"time": "2026-11-27T10:00:00Z", "release": second["digest"][:8], "metrics": {"quality": 0.9}}
    (tmp_path / "t.jsonl").write_text(json.dumps(record) + "\n")
    loaded = cli("txn", "ingest", "web", "t.jsonl", "--json")
    assert loaded.code == 0 and loaded.json()["inserted"] == 1
    assert cli("txn", "ingest", "web", "t.jsonl").code == 0
    with charter.open(user="admin") as reg, reg.store.read() as tx:
        txn_id = tx.conn.exec_driver_sql("SELECT id FROM transactions LIMIT 1").scalar()
    trace = cli("trace", str(txn_id), "--json").json()
    assert trace["model"]["ref"] == "m@1.1.0" and trace["prompts"][0]["ref"] == "greet-v2"
    assert cli("trace", str(txn_id)).code == 0
    assert cli("trace", "019cadc6-9a80-7000-8a37-1af978ea08cc").code == 3

    state = cli("state", "show", "web", "--json").json()
    assert state["production"]["digest"] == second["digest"] and state["rollout"] is None
    assert cli("state", "show", "web", "--at", "2020-01-01", "--json").json()["exists"] is False
    diff = cli("state", "diff", "web", "--from", "2020-01-01", "--to", "2100-01-01", "--json").json()
    assert {c["field"] for c in diff["changes"]} >= {"production", "model", "prompts"}
    assert cli("state", "diff", "web", "--from", "2020-01-01", "--to", "2100-01-01").code == 0
    changes = cli("changes", "--since", "2020-01-01", "--slot", "web", "--json").json()
    actions = [e["action"] for e in changes]
    assert {"model.created", "slot.created", "rollout.complete", "model.promoted"} <= set(actions)
    assert all(e["subject"] != "slot:agent" for e in changes)
    assert cli("changes", "--since", "yesterday").code == 1

    incident = cli("incident", "report", "web", "--severity", "P1", "--release", second["digest"][:8],
                   "--summary", "slow", "--json")  # fmt: skip
    assert incident.code == 0 and incident.json()["rollback"] is None
    assert cli("incident", "list", "web", "--json").json()[0]["severity"] == "P1"
    back = cli("slot", "rollback", "web", "--reason", "complaints", "--json")
    assert back.code == 0 and back.json()["after"] == first["digest"]
    history = cli("model", "history", "m")
    assert history.code == 0 and "production periods of m per slot" in history.out
    assert cli("slot", "list", "--json").json()[0]["name"] in ("agent", "web")
    assert cli("slot", "show", "web").code == 0 and cli("slot", "list").code == 0
    assert cli("rollout", "tick", "--json").json()["rollouts"] == []
    assert cli("audit", "verify").code == 0


def test_exit_codes_for_bad_input_missing_things_and_permissions(cli: Cli, w: World) -> None:
    assert cli("slot", "show", "nope").code == 3
    assert cli("slot", "create", "Bad Name").code == 1
    assert cli("release", "show", "abc").code == 1
    assert cli("release", "create", "agent", "--model", "m@1.0.0", "--param", "novalue").code == 1
    assert cli("rollout", "status", "agent").code == 3
    assert cli("rollout", "start", "agent").code == 2  # usage: options missing
    assert cli("slot", "create", "x", user="sam").code == 5
    denied = cli("slot", "create", "x", "--json", user="sam")
    assert denied.json()["error"] == "MissingRole"
    assert cli("rollout", "tick", user="sam").code == 5
    assert cli("incident", "report", "agent", "--severity", "P7", "--release", w.candidate[:8],
               "--summary", "x", user="olga").code == 1  # fmt: skip

"""`make demo`: the example governance project played against a temporary store (SQLite), and the
story's outcomes read back from that store."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from examples.demo.__main__ import main as demo
from examples.demo.store import MARKER

import charter
from charter.config import Settings
from charter.service.registry import Registry
from charter.service.setup import init_store


@dataclass
class Played:
    home: Path
    workspace: Path
    output: str
    facts: dict[str, Any]
    reg: Registry


def _env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("CHARTER_HOME", str(home))
    monkeypatch.setenv("CHARTER_USER", "ops-admin")
    monkeypatch.delenv("CHARTER_DATABASE_URL", raising=False)
    monkeypatch.delenv("CHARTER_BLOB_URL", raising=False)


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _env(monkeypatch, root / "store")
        out = io.StringIO()
        assert demo(["--workspace", str(root / "workspace")], out=out) == 0, out.getvalue()
        facts = json.loads((root / "store" / MARKER).read_text())
        reg = charter.open(str(root / "store"), user="ops-admin")
        yield Played(root / "store", root / "workspace", out.getvalue(), facts, reg)
        reg.close()


def test_the_contaminated_evaluation_blocked_the_promotion(played: Played) -> None:
    assert (
        "tickets-eval-legacy@1 shares rows with training data: tickets-train@1 (48 rows)"
        in (played.facts["contamination_refusal"])
    )
    assert "REFUSED by the promotion gate" in played.output
    reg = played.reg
    legacy = [
        e
        for e in reg.models.describe("ticket-router@1.0.0").evaluations
        if e.dataset == "tickets-eval-legacy@1"
    ]
    assert legacy and legacy[0].exact_overlap["tickets-train@1"]["overlapping"] == 48
    events = reg.audit.log(subject="model:ticket-router@1.0.0")
    actions = [(e.action, e.payload.get("dataset")) for e in events]
    promoted = actions.index(("model.promoted", None))
    assert actions.index(("model.evaluated", "tickets-holdout@1")) < promoted  # only after a clean evaluation
    (promotion,) = reg.models.describe("ticket-router@1.0.0").promotions
    assert promotion["report"]["checks"][0]["evidence"]["evaluation"]["dataset"] == "tickets-holdout@1"
    again = reg.models.promote(
        "ticket-router@1.0.0", rollback_plan="x", eval="tickets-eval-legacy@1", dry_run=True
    )
    assert not again.checks[0].passed and "shares rows with training data" in again.checks[0].detail


def test_the_first_candidate_reached_production_through_every_stage(played: Played) -> None:
    reg = played.reg
    first, candidate, _ = played.facts["releases"]
    assert reg.slots.show("support-agent").production == candidate
    assert reg.models.get("support-llm@production").ref == "support-llm@1.1.0"
    assert reg.prompts.get("classify-ticket@production").ref == "classify-ticket-v2"
    pack = reg.reports.evidence("support-agent")
    rollout = next(r for r in pack.facts["rollouts"] if r["candidate"] == candidate)
    assert rollout["baseline"] == first and rollout["status_at_time"] == "production"
    stages = [t["to"] for t in rollout["transitions"] if t["action"] in ("start", "advance", "complete")]
    assert stages == ["shadow", "canary-5", "canary-20", "canary-50", "production"]
    assert [a["by"] for a in rollout["approvals"]] == ["bob"]
    assert {c["item"] for c in rollout["checklist"]} == {"rollback-tested", "oncall-briefed"}
    assert all(t["verdict"]["verdict"] == "pass" for t in rollout["transitions"] if t["action"] == "advance")


def test_the_second_candidate_was_rolled_back_automatically_after_an_incident(played: Played) -> None:
    reg = played.reg
    _, production, second = played.facts["releases"]
    assert played.facts["incident_rollback"] == "rolled_back"
    (incident,) = reg.rollouts.incidents("support-agent")
    assert incident["severity"] == "P0" and incident["release"] == second
    status = reg.rollouts.status("support-agent")
    assert status.rollout["candidate"] == second and status.rollout["status"] == "rolled_back"
    last = status.transitions[-1]
    assert last["action"] == "rollback" and last["actor"] == "charter"
    assert reg.slots.show("support-agent").production == production  # never left production's release


def test_a_transaction_traces_to_its_model_prompt_and_dataset_versions(played: Played) -> None:
    trace = played.reg.trace(played.facts["traced"])
    assert trace.transaction["arm"] == "candidate" and trace.transaction["stage"] == "canary-50"
    assert trace.model["ref"] == "support-llm@1.1.0"
    assert [p["ref"] for p in trace.prompts] == ["classify-ticket-v2", "draft-reply-v2"]
    assert [d["ref"] for d in trace.datasets["training"]] == ["tickets-train@1"]
    assert [e["dataset"] for e in trace.model["evaluations"]] == ["tickets-holdout@1"]
    assert trace.rollout is not None and trace.rollout["approved_by"] == "bob"
    assert f"charter trace {played.facts['traced']}" in played.output


def test_the_ledger_verifies_and_the_story_happened_in_the_past(played: Played) -> None:
    reg = played.reg
    assert reg.audit.verify().ok
    events = reg.audit.log()
    assert len(events) == played.facts["ledger_events"]
    times = [datetime.fromisoformat(e.time.replace("Z", "+00:00")) for e in events]
    assert times == sorted(times) and times[-1] < datetime.now(UTC)
    assert (times[-1] - times[0]).days >= 9
    for path in played.facts["evidence"]:
        assert "verified" in Path(path).read_text()
    prompts = [p for p in reg.prompts.list()]
    assert len(prompts) == 12 and all(p.latest for p in prompts)
    source = reg.prompts.get("draft-reply-v3").source
    assert source["path"] == "support/draft-reply.prompt.yaml"


def test_running_the_demo_again_changes_nothing(played: Played, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, played.home)
    head = played.reg.audit.log(newest_first=True, limit=1)[0].sequence
    out = io.StringIO()
    assert demo(["--workspace", str(played.workspace)], out=out) == 0
    assert "already holds the demo" in out.getvalue()
    assert played.reg.audit.log(newest_first=True, limit=1)[0].sequence == head


def test_a_store_that_is_not_the_demo_is_never_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "mine"
    _env(monkeypatch, home)
    settings = Settings.from_env()
    init_store(settings)
    with charter.open() as reg:
        reg.users.add("someone", ["viewer"])
    workspace = tmp_path / "ws"
    out = io.StringIO()
    assert demo(["--workspace", str(workspace)], out=out) == 1
    assert "holds other data" in out.getvalue() and not workspace.exists()
    assert demo(["--reset", "--workspace", str(workspace)], out=out) == 1
    assert (home / "charter.db").exists() and not (home / MARKER).exists()


def test_an_empty_store_is_refused_and_reset_removes_only_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "empty"
    _env(monkeypatch, home)
    init_store(Settings.from_env())
    out = io.StringIO()
    assert demo(["--workspace", str(tmp_path / "ws")], out=out) == 1
    assert "replays ten days of history" in out.getvalue()
    (tmp_path / "ws").mkdir()
    assert demo(["--reset", "--workspace", str(tmp_path / "ws")], out=out) == 0
    assert not home.exists() and not (tmp_path / "ws").exists() and tmp_path.exists()

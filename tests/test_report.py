"""Evidence packs (`charter report`): the facts of a model version, a prompt version and a slot,
escaping, the state at an earlier instant, the ledger's verification, and the command line."""

from __future__ import annotations

from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from charter.clock import ManualClock
from charter.config import Settings
from charter.errors import InvalidInput, NotFound
from charter.service.registry import Registry
from charter.service.reports import EvidencePack
from tests.cli_runner import Cli
from tests.test_prompt_helpers import SQLITE_ONLY
from tests.test_slot_helpers import MODEL_SPEC, QUICK_TRACK, World, to_production, world

# Approval required even for a MINOR model change, so the slot's pack has an approval to show.
APPROVING_TRACK: dict[str, Any] = {**QUICK_TRACK, "name": "approving", "approval": {"minor": "required"}}


class _Text(HTMLParser):
    """The visible text of a page, and whether it holds any element a pack must never hold."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: set[str] = set()
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.parts.append(data)


def text_of(pack: EvidencePack) -> tuple[str, set[str]]:
    parser = _Text()
    parser.feed(pack.html)
    return " ".join(" ".join(parser.parts).split()), parser.tags


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock, track=APPROVING_TRACK)


def _actions(pack: EvidencePack) -> list[str]:
    return [c["action"] for c in pack.changes]


def test_a_model_pack_holds_its_spec_evaluations_gate_signoffs_and_change_log(w: World) -> None:
    to_production(w, approve=True)
    pack = w.admin.reports.evidence("m@1.1.0")
    assert pack.subject == "model:m@1.1.0" and pack.kind == "model" and pack.verified
    head = w.admin.audit.log(newest_first=True, limit=1)[0]
    assert (pack.head_sequence, pack.head_hash) == (head.sequence, head.hash)
    facts = pack.facts
    assert facts["inventory"]["registered_by"] == "admin" and facts["inventory"]["aliases_holding_it"] == [
        "production"
    ]
    assert facts["spec"]["provider_model"] == "claude-sonnet-4-5-20251001"
    assert [(e["dataset"], e["metrics"]) for e in facts["evaluations"]] == [("golden@1", {"accuracy": 0.92})]
    assert [s["by"] for s in facts["signoffs"]] == ["rita"]
    (promotion,) = facts["promotions"]
    assert promotion["by"] == "olga" and promotion["report"]["passed"]
    assert [c["passed"] for c in promotion["report"]["checks"]] == [True] * 4
    assert facts["production_periods"][0]["slot"] == "agent"
    assert {"model.registered", "model.evaluated", "model.signed_off", "model.promoted"} <= set(
        _actions(pack)
    )
    text, tags = text_of(pack)
    assert "Evidence pack: model:m@1.1.0" in text and "rita" in text and "PASS" in text
    assert pack.head_hash in text and "verified" in text and "script" not in tags
    assert "as_dict" not in text and "html" not in pack.as_dict()


def test_a_contaminated_evaluation_is_shown_failing_the_gate(w: World, tmp_path: Path) -> None:
    reg = w.admin
    rows = [f"ticket {i} about printers,hardware" for i in range(20)]
    (tmp_path / "train.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "leaky.csv").write_text("text,label\n" + "\n".join([*rows[:3], "a new one,network"]) + "\n")
    reg.datasets.add("corpus", tmp_path / "train.csv", role="train")
    reg.datasets.add("leaky", tmp_path / "leaky.csv", role="eval")
    reg.models.register("n", {**MODEL_SPEC, "training": {"datasets": ["corpus@1"]}})
    reg.models.eval("n@1.0.0", dataset="leaky@1", metrics={"accuracy": 0.99})
    pack = reg.reports.evidence("n@1.0.0")
    (evaluation,) = pack.facts["evaluations"]
    assert evaluation["contaminated"] and evaluation["exact_rows_shared"] == 3
    gate = pack.facts["gate_now"]
    assert gate is not None and not gate["checks"][0]["passed"]
    assert "shares rows with training data" in gate["checks"][0]["detail"]
    assert {"dataset.version_added", "model.evaluated"} <= set(_actions(pack))
    text, _ = text_of(pack)
    assert "Contaminated: 3 rows shared with training data." in text
    assert "3 of 4 rows" in text


def test_a_prompt_pack_holds_its_content_validations_and_environment_moves(w: World) -> None:
    to_production(w, approve=True)
    pack = w.admin.reports.evidence("greet-v2")
    assert pack.subject == "prompt:greet-v2" and pack.verified
    assert w.admin.reports.evidence("greet@2").subject == "prompt:greet-v2"
    assert w.admin.reports.evidence("prompt:greet@production").subject == "prompt:greet-v2"
    facts = pack.facts
    assert facts["inventory"]["environments_holding_it"] == ["development", "production", "staging"]
    assert (
        facts["content"]["template"] == "Hello {{ who }} #2"
        and facts["source"]["path"] == "greet.prompt.yaml"
    )
    assert facts["model"]["ref"] == "m@1.0.0"
    (validation,) = facts["validations"]
    assert validation["passed"] and validation["sample_size"] == 10
    moves = [(m["environment"], m["actor"]) for m in facts["environment_history"] if m["to"] == "greet-v2"]
    assert moves == [("development", "admin"), ("staging", "admin"), ("production", "olga")]
    assert {"prompt.version_added", "prompt.validated", "prompt.promoted"} <= set(_actions(pack))
    text, _ = text_of(pack)
    assert "Hello {{ who }} #2" in text and "10 of 10 rows on sample@1" in text


def test_a_slot_pack_holds_the_release_rollout_gates_approvals_and_checklist(w: World) -> None:
    to_production(w, approve=True)
    for target in ("agent", "slot:agent"):
        pack = w.admin.reports.evidence(target)
        assert pack.subject == "slot:agent" and pack.kind == "slot" and pack.verified
    facts = pack.facts
    assert facts["production"]["digest"] == w.candidate
    assert facts["production"]["model_version"]["ref"] == "m@1.1.0"
    assert facts["production"]["prompt_versions"][0]["latest_validation"]["passed"]
    (rollout,) = facts["rollouts"]
    assert rollout["status_at_time"] == "production" and rollout["started_by"] == "olga"
    assert [a["by"] for a in rollout["approvals"]] == ["rita"]
    assert [c["item"] for c in rollout["checklist"]] == ["rollback-tested", "oncall-briefed"]
    verdicts = [t["verdict"]["verdict"] for t in rollout["transitions"] if t["verdict"]]
    assert verdicts == ["pass", "pass", "pass"]
    assert rollout["pre_traffic"]["passed"]
    assert [p["kind"] for p in facts["periods"]] == ["bootstrap", "rollout"]
    assert {"slot.created", "release.created", "rollout.start", "rollout.approve", "rollout.complete"} <= set(
        _actions(pack)
    )
    assert "model.promoted" in _actions(pack)  # a related subject: the model version it promoted
    text, _ = text_of(pack)
    assert "rollback-tested" in text and "oncall-briefed" in text and w.candidate in text
    assert "Gate verdict at advance" in text


def test_everything_a_user_wrote_is_escaped(w: World) -> None:
    hostile = '<script>alert("pack")</script><img src=x onerror=alert(1)>'
    w.admin.models.register("m", {**MODEL_SPEC, "provider_model": "claude-sonnet-4-5-20251101",
                                  "description": hostile})  # fmt: skip
    w.rita.models.signoff("m@1.2.0", note="</td></table><script>x()</script>")
    pack = w.admin.reports.evidence("m@1.2.0")
    text, tags = text_of(pack)
    assert "script" not in tags and "img" not in tags
    assert hostile in text and "</td></table><script>x()</script>" in text
    assert "&lt;script&gt;" in pack.html


def test_at_an_instant_before_the_promotion_shows_the_earlier_state(w: World) -> None:
    before = w.clock.now()
    w.clock.advance(timedelta(minutes=5))
    to_production(w, approve=True)
    model = w.admin.reports.evidence("m@1.1.0", at=before)
    assert model.facts["promotions"] == [] and model.facts["aliases"] == {}
    assert model.facts["gate_now"] is None  # a dry run answers for now, never for the past
    assert "model.promoted" not in _actions(model) and model.verified
    events_then = [e for e in w.admin.audit.log() if datetime.fromisoformat(e.time) <= before]
    assert model.head_sequence == events_then[-1].sequence and model.head_hash == events_then[-1].hash
    assert model.head_sequence < w.admin.reports.evidence("m@1.1.0").head_sequence
    text, _ = text_of(model)
    assert "This version was not promoted to production at that time." in text
    slot = w.admin.reports.evidence("agent", at=before)
    assert slot.facts["production"]["digest"] == w.production and slot.facts["rollouts"] == []
    prompt = w.admin.reports.evidence("greet-v2", at=before)
    assert "production" not in prompt.facts["inventory"]["environments_holding_it"]
    with pytest.raises(NotFound, match="alias m@production at"):
        w.admin.reports.evidence("m@production", at=before)
    assert w.admin.reports.evidence("m@production").subject == "model:m@1.1.0"


def test_a_target_that_did_not_exist_yet_or_at_all_is_not_found(w: World) -> None:
    early = w.clock.now() - timedelta(days=1)
    for target in ("m@1.1.0", "greet-v2", "agent"):
        with pytest.raises(NotFound, match="at "):
            w.admin.reports.evidence(target, at=early)
    for target in ("m@9.9.9", "greet-v9", "no-such-slot", "nothing@production"):
        with pytest.raises(NotFound):
            w.admin.reports.evidence(target)
    with pytest.raises(NotFound, match="a bare name is a slot; a report target is MODEL@"):
        w.admin.reports.evidence("m")
    with pytest.raises(InvalidInput):
        w.admin.reports.evidence("  ")


@SQLITE_ONLY
def test_a_tampered_ledger_is_reported_in_the_pack(w: World, cli: Cli, tmp_path: Path) -> None:
    with w.admin.store.write() as tx:
        tx.conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE sequence = 3"))
    pack = w.admin.reports.evidence("m@1.0.0")
    assert not pack.verified and pack.verification["first_bad_sequence"] == 3
    text, _ = text_of(pack)
    assert "DOES NOT VERIFY" in text
    run = cli("report", "m@1.0.0", "--out", str(tmp_path / "m.html"))
    assert run.code == 4 and "does not verify: event 3" in run.err
    assert "DOES NOT VERIFY" in (tmp_path / "m.html").read_text()


@pytest.fixture
def cli(settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CHARTER_HOME", str(settings.home))
    monkeypatch.setenv("CHARTER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CHARTER_USER", "admin")
    return Cli(capsys, monkeypatch)


def test_the_command_writes_the_pack_and_prints_a_summary(w: World, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "packs" / "agent.html"
    run = cli("report", "agent", "--out", str(out))
    assert run.code == 0, run.err
    assert out.read_text().startswith("<!doctype html>") and "slot:agent" in run.out and str(out) in run.out
    at = w.clock.now().isoformat()
    as_json = cli("report", "m@1.0.0", "--at", at, "--out", str(tmp_path / "m.html"), "--json", user="rita")
    assert as_json.code == 0, as_json.err
    body = as_json.json()
    assert body["subject"] == "model:m@1.0.0" and body["verified"] and body["out"] == str(tmp_path / "m.html")
    assert "html" not in body and body["at"] is not None
    assert cli("report", "nothing-here", "--out", str(tmp_path / "x.html")).code == 3
    assert not (tmp_path / "x.html").exists()
    assert cli("report", "m@1.0.0", "--at", "yesterday", "--out", str(tmp_path / "y.html")).code == 1

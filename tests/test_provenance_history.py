"""Provenance against a scripted history: trace of transactions recorded in each stage, the state of
a slot at any instant, the diff of two instants, the changes in a window, production periods."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from charter.clock import ManualClock
from charter.errors import InvalidInput, NotFound
from charter.service.registry import Registry
from tests.test_slot_helpers import PLAN, World, traffic, world


def one(reg: Registry, key: str, **metrics: float) -> str:
    reg.router.invalidate()
    with reg.transaction("agent", key=key) as txn:
        txn.record(**metrics)
        if txn.shadow is not None:
            txn.record_shadow(**metrics)
    reg.flush()
    return txn.id


def candidate_key(reg: Registry) -> str:
    return next(
        k for k in (f"probe-{i}" for i in range(10_000)) if reg.route("agent", k).arm.value == "candidate"
    )


@pytest.fixture
def history(registry: Registry, tmp_path: Path, clock: ManualClock) -> tuple[World, dict[str, Any]]:
    """The script: bootstrap at T0; rollout start at T1; canary at T2; half (override) at T3;
    production at T4; slot rollback at T5. One transaction recorded in each period."""
    w = world(registry, tmp_path, clock)
    t: dict[str, Any] = {"T0": clock.now()}
    t["txn0"] = one(w.sam, "alice", quality=0.8)
    clock.advance(timedelta(hours=1))
    t["T1"] = clock.now()
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    t["txn1"] = one(w.sam, "alice", quality=0.8, format_ok=1)
    traffic(w.sam, "agent", 100)
    clock.advance(timedelta(hours=1))
    t["T2"] = clock.now()
    w.olga.rollouts.advance("agent")
    t["txn2"] = one(w.sam, candidate_key(w.sam), quality=0.81)
    clock.advance(timedelta(minutes=10))
    w.admin.models.set_primary_metrics("m", {"accuracy": "higher", "latency": "lower"})
    clock.advance(timedelta(hours=2))
    t["T3"] = clock.now()
    w.admin.rollouts.advance("agent", override=True, reason="canary looks fine by hand")
    w.olga.rollouts.check("agent", item="rollback-tested")
    w.olga.rollouts.check("agent", item="oncall-briefed")
    traffic(w.sam, "agent", 600, seed=3)
    clock.advance(timedelta(hours=1))
    t["T4"] = clock.now()
    w.olga.rollouts.advance("agent")
    t["txn4"] = one(w.sam, "alice", quality=0.9)
    clock.advance(timedelta(days=1))
    t["T5"] = clock.now()
    w.olga.slots.rollback("agent", reason="complaints")
    clock.advance(timedelta(minutes=1))
    return w, t


def test_trace_answers_the_whole_chain_of_each_transaction(history: tuple[World, dict[str, Any]]) -> None:
    w, t = history
    before = w.admin.trace(t["txn0"]).as_dict()
    assert before["transaction"]["arm"] == "baseline" and before["transaction"]["stage"] is None
    assert before["release"]["digest"] == w.production and before["rollout"] is None
    assert before["model"]["ref"] == "m@1.0.0" and before["production_at_time"] == w.production
    assert before["prompts"][0]["template"] == "Hello {{ who }} #1"

    shadowed = w.admin.trace(t["txn1"]).as_dict()
    assert (shadowed["transaction"]["stage"], shadowed["transaction"]["table_version"]) == ("shadow", 2)
    assert shadowed["rollout"]["stage_at_time"] == "shadow" and shadowed["rollout"]["started_by"] == "olga"

    canary = w.admin.trace(t["txn2"]).as_dict()
    assert canary["transaction"]["arm"] == "candidate" and canary["transaction"]["stage"] == "canary"
    assert canary["release"]["digest"] == w.candidate and canary["production_at_time"] == w.production
    model = canary["model"]
    assert model["ref"] == "m@1.1.0" and model["spec"]["provider_model"] == "claude-sonnet-4-5-20251001"
    assert model["evaluations"][0]["dataset"] == "golden@1" and model["signoffs"][0]["by"] == "rita"
    assert model["promotions"][0]["report"]["passed"]  # the gate evidence of the rollout's promotion
    assert canary["prompts"][0]["ref"] == "greet-v2" and canary["prompts"][0]["template"].endswith("#2")
    assert canary["release"]["effective_params"]["greet"]["max_tokens"] == {"value": 600, "source": "release"}
    rollout = canary["rollout"]
    assert rollout["overrides"] == [{"by": "admin", "reason": "canary looks fine by hand",
                                     "at": t["T3"].isoformat(), "stage": "canary"}]  # fmt: skip
    assert [c["item"] for c in rollout["checklist"]] == ["rollback-tested", "oncall-briefed"]
    assert rollout["pre_traffic"]["passed"] and rollout["status_now"] == "production"

    after = w.admin.trace(t["txn4"]).as_dict()
    assert after["transaction"]["arm"] == "baseline" and after["release"]["digest"] == w.candidate
    assert after["production_at_time"] == w.candidate
    with pytest.raises(NotFound):
        w.admin.trace("019cadc6-9a80-7000-8a37-1af978ea08cc")


def test_state_at_any_instant_replays_the_audit_events(history: tuple[World, dict[str, Any]]) -> None:
    w, t = history
    half = lambda key: t[key] + timedelta(minutes=30)  # noqa: E731

    def state(at: datetime) -> dict[str, Any]:
        return w.admin.state("agent", at).as_dict()

    early = state(t["T0"] - timedelta(hours=1))
    assert not early["exists"] and early["production"] is None
    s0 = state(half("T0"))
    assert s0["production"]["digest"] == w.production and s0["rollout"] is None
    assert s0["traffic"] == {"candidate": 0.0, "baseline": 100.0, "shadow_sample": 0.0}
    s1 = state(half("T1"))
    assert s1["rollout"]["stage"] == "shadow" and s1["traffic"]["shadow_sample"] == 1.0
    assert s1["production"]["model"] == "m@1.0.0"
    s2 = state(half("T2"))
    assert (s2["rollout"]["stage"], s2["traffic"]["candidate"]) == ("canary", 5.0)
    s3 = state(half("T3"))
    assert (s3["rollout"]["stage"], s3["traffic"]["candidate"]) == ("half", 50.0)
    s4 = state(half("T4"))
    assert s4["rollout"] is None and s4["production"]["digest"] == w.candidate
    assert s4["production"]["model"] == "m@1.1.0" and s4["production"]["prompts"] == ["greet-v2"]
    s5 = state(half("T5"))
    assert s5["production"]["digest"] == w.production
    assert [s["routing_version"] for s in (s0, s1, s2, s3, s4, s5)] == [1, 2, 3, 4, 5, 6]
    exact = state(t["T2"])  # an instant with an event is the state after it
    assert exact["rollout"]["stage"] == "canary"


def test_a_state_diff_names_what_changed(history: tuple[World, dict[str, Any]]) -> None:
    w, t = history
    diff = w.admin.state_diff(
        "agent", t["T0"] + timedelta(minutes=30), t["T4"] + timedelta(minutes=30)
    ).as_dict()
    changed = {c["field"]: (c["from"], c["to"]) for c in diff["changes"]}
    assert changed["model"] == ("m@1.0.0", "m@1.1.0")
    assert changed["prompts"] == (["greet-v1"], ["greet-v2"])
    assert changed["production"] == (w.production, w.candidate)
    assert changed["params"][1]["greet"]["max_tokens"]["value"] == 600
    assert "policy" not in changed and "rollout" not in changed
    actions = [e["action"] for e in diff["events"]]
    assert actions[0] == "rollout.start" and "rollout.complete" in actions
    same = w.admin.state_diff("agent", t["T5"], t["T5"] + timedelta(seconds=30))
    assert same.changes == ()
    with pytest.raises(InvalidInput):
        w.admin.state_diff("agent", t["T5"], t["T0"])


def test_changes_lists_every_event_of_the_window_across_registries(
    history: tuple[World, dict[str, Any]],
) -> None:
    w, t = history
    everything = w.admin.changes(t["T2"], t["T3"])
    assert [e.action for e in everything] == ["rollout.advance", "model.primary_metrics_changed"]
    w.admin.slots.create("elsewhere")
    unrelated = w.admin.changes(t["T5"], slot="agent")
    assert unrelated[0].action == "slot.rolled_back"
    assert all(e.subject != "slot:elsewhere" for e in unrelated)
    assert [e.sequence for e in everything] == sorted(e.sequence for e in everything)


def test_model_history_lists_production_periods_per_slot(history: tuple[World, dict[str, Any]]) -> None:
    w, t = history
    periods = w.admin.provenance.production_periods("m")
    assert [(p["version"], p["slot"], p["kind"]) for p in periods] == [
        ("1.0.0", "agent", "bootstrap"), ("1.1.0", "agent", "rollout"), ("1.0.0", "agent", "rollback"),
    ]  # fmt: skip
    assert periods[1]["from"] == t["T4"].isoformat() and periods[1]["to"] == t["T5"].isoformat()
    assert periods[2]["to"] is None

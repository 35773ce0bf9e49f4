"""The demo's story, played through the SDK on a simulated clock.

Ten days in the life of a support team's AI, ending before now: datasets are snapshotted, two
models are registered (an API model pinned to a dated snapshot and a fine-tune we host), a
contaminated evaluation is caught by the promotion gate, reviewers sign off, prompts are synced
from a git repository and validated, a slot is rolled out stage by stage on simulated traffic, a
second candidate causes an incident and is rolled back automatically, and one transaction is
traced to everything that produced it. Every step is what a person would do with the CLI; the
script uses the SDK because only the SDK takes a clock (so days-long stages play in seconds and
the timestamps still look like ten real days). The deployment chapters are in `deploy.py`.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml
from examples.demo import data as demo_data
from examples.demo.deploy import first_rollout, prompts, second_rollout, slot
from examples.demo.scene import HERE, SLOT, Story, short

from charter.clock import ManualClock
from charter.config import Settings
from charter.errors import GateRefused
from charter.service.setup import init_store, open_registry

__all__ = ["HERE", "SLOT", "play"]


def play(settings: Settings, workspace: Path, out: TextIO, *, now: datetime | None = None) -> dict[str, Any]:
    """Create the store (it must not exist) and play the whole story; returns the story's facts."""
    real_now = now or datetime.now(UTC)
    start = (real_now - timedelta(days=10)).replace(hour=8, minute=0, second=0, microsecond=0)
    clock = ManualClock(start)
    init_store(settings, clock)
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    story = Story(open_registry(settings, clock=clock), clock, start, workspace, out)
    try:
        for chapter in (
            team,
            datasets,
            ticket_router,
            support_model,
            prompts,
            slot,
            first_rollout,
            retrain_router,
            second_rollout,
        ):
            chapter(story)
        assert clock.now() < real_now, "the story must end before now"
        story.facts.update(ledger_events=story.admin.audit.log(newest_first=True, limit=1)[0].sequence)
    finally:
        story.admin.close()
    return story.facts


# --- chapters ----------------------------------------------------------------------------------------


# --- chapters: the registries --------------------------------------------------------------------


def team(s: Story) -> None:
    me = s.admin.actor
    s.chapter(f"Day 1 — {me} sets up charter for the support team")
    for name, role in (
        ("alice", "author"),
        ("bob", "reviewer"),
        ("carol", "operator"),
        ("dave", "viewer"),
        ("support-agent-svc", "service"),
    ):
        s.admin.users.add(name, [role])
    s.say(me, "adds alice (author), bob (reviewer), carol (operator), dave (viewer, auditor)")
    s.say(me, "adds support-agent-svc (service: the application that routes and records requests)")
    s.admin.policies.apply(yaml.safe_load((HERE / "policy.yaml").read_text()))
    s.say(me, "applies examples/demo/policy.yaml: validation ≥ 95 % over ≥ 60 rows, contamination ≤ 1 %")


def datasets(s: Story) -> None:
    s.at(0, "09:30")
    generated = demo_data.generate(s.workspace / "data")
    s.facts["contaminated_rows"] = generated.contaminated_rows
    alice = s.user("alice").datasets
    alice.add(
        "tickets-train",
        generated.train,
        role="train",
        sources=["s3://acme-support/exports/tickets/2026-10"],
        message="October export",
    )
    alice.add("tickets-holdout", generated.holdout, role="holdout", message="held out before labelling")
    alice.add(
        "tickets-eval-legacy", generated.legacy_eval, role="eval", message="the old QA team's evaluation set"
    )
    alice.add("tickets-sample", generated.sample, role="production-sample", message="80 live tickets")
    s.say("alice", "snapshots tickets-train@1 (1,200 rows, CSV), tickets-holdout@1 (300, Parquet),")
    s.say("", "tickets-eval-legacy@1 (240, CSV) and tickets-sample@1 (80, JSON Lines)")
    s.data = generated


def ticket_router(s: Story) -> None:
    s.chapter("Day 1 — the ticket router: a fine-tune we host, and a contaminated evaluation")
    s.at(0, "14:00")
    alice, bob, carol = s.user("alice"), s.user("bob"), s.user("carol")
    spec = yaml.safe_load((HERE / "models" / "ticket-router.yaml").read_text())
    spec["weights"] = str(s.generated.weights_v1)
    alice.models.register("ticket-router", spec)
    s.say(
        "alice",
        "registers ticket-router@1.0.0 (distilbert fine-tune, 96 KiB weights, trained on tickets-train@1)",
    )
    alice.models.eval(
        "ticket-router@1.0.0",
        dataset="tickets-eval-legacy@1",
        metrics={"accuracy": 0.97, "macro_f1": 0.96},
        note="the usual QA set",
    )
    s.say("alice", "evaluates it on tickets-eval-legacy@1: accuracy 0.97 — suspiciously good")
    s.clock.advance(timedelta(minutes=40))
    bob.models.signoff("ticket-router@1.0.0", note="metrics look great")
    s.say("bob", "signs off ticket-router@1.0.0")
    s.clock.advance(timedelta(minutes=20))
    try:
        carol.models.promote("ticket-router@1.0.0", rollback_plan="route by the keyword rules again")
    except GateRefused as refused:
        failed = [c for c in refused.report["checks"] if not c["passed"]]
        s.facts["contamination_refusal"] = refused.message
        s.say("carol", "tries to promote it: REFUSED by the promotion gate (exit 4), nothing changed:")
        for check in failed:
            s.say("", f"  {check['name']}: {short(check['detail'])}")
    else:
        raise AssertionError("the contaminated evaluation should have blocked the promotion")
    s.clock.advance(timedelta(hours=1))
    alice.models.eval(
        "ticket-router@1.0.0",
        dataset="tickets-holdout@1",
        metrics={"accuracy": 0.91, "macro_f1": 0.89},
        note="clean held-out set",
    )
    s.say("alice", "evaluates on tickets-holdout@1 (no row shared with training): accuracy 0.91")
    s.clock.advance(timedelta(minutes=30))
    carol.models.promote("ticket-router@1.0.0", rollback_plan="route by the keyword rules again")
    s.say("carol", "promotes ticket-router@1.0.0: all four checks pass → ticket-router@production")


def support_model(s: Story) -> None:
    s.chapter("Day 2 — the support agent's model: an API model pinned to a dated snapshot")
    s.at(1, "09:00")
    alice, bob, carol = s.user("alice"), s.user("bob"), s.user("carol")
    alice.models.register("support-llm", HERE / "models" / "support-llm.yaml")
    s.say("alice", "registers support-llm@1.0.0 (openai gpt-4o-2024-08-06; `gpt-4o` alone would be refused)")
    alice.models.eval("support-llm@1.0.0", dataset="tickets-holdout@1", metrics={"accuracy": 0.86})
    bob.models.signoff("support-llm@1.0.0", note="holdout results reviewed")
    carol.models.promote("support-llm@1.0.0", rollback_plan="switch the assistant off (feature flag)")
    s.say("alice", "evaluates it on tickets-holdout@1 (0.86); bob signs off; carol promotes it")


def retrain_router(s: Story) -> None:
    s.chapter("Day 9 — the ticket router is retrained on more data")
    s.at(8, "10:00")
    alice, bob, carol = s.user("alice"), s.user("bob"), s.user("carol")
    added = alice.datasets.add(
        "tickets-train",
        s.generated.train_more,
        role="train",
        sources=["s3://acme-support/exports/tickets/2026-11"],
        message="November appended",
    )
    s.say(
        "alice",
        f"snapshots tickets-train@2, 400 tickets appended: "
        f"{added.bytes_new:,} of {added.bytes_read:,} bytes new",
    )
    spec = yaml.safe_load((HERE / "models" / "ticket-router.yaml").read_text())
    spec["weights"] = str(s.generated.weights_v2)
    spec["training"] = {**spec["training"], "datasets": ["tickets-train@2"], "date": "2026-11-20"}
    s.clock.advance(timedelta(minutes=10))
    alice.models.register("ticket-router", spec)
    alice.models.eval(
        "ticket-router@1.1.0", dataset="tickets-holdout@1", metrics={"accuracy": 0.93, "macro_f1": 0.91}
    )
    s.say("alice", "registers ticket-router@1.1.0 (new weights, tickets-train@2); holdout 0.93 vs 0.91")
    s.clock.advance(timedelta(minutes=15))
    bob.models.signoff("ticket-router@1.1.0", note="beats 1.0.0 on both metrics")
    s.say("bob", "signs off ticket-router@1.1.0")
    s.clock.advance(timedelta(minutes=15))
    carol.models.promote(
        "ticket-router@1.1.0", rollback_plan="charter model rollback ticket-router", rollback_to="1.0.0"
    )
    s.say("carol", "promotes it: the champion comparison passes; 1.0.0 is the rollback target")

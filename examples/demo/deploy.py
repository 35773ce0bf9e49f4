"""The demo's deployment chapters: prompts from a git repository, the slot, and two rollouts."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from examples.demo.runner import run as demo_runner
from examples.demo.scene import BASELINE, HERE, IMPROVED, PLAN, SLOT, Story
from examples.demo.traffic import history, serve


def _git(app: Path, *args: str, when: datetime) -> str | None:
    """Run git in the demo's application repository as alice; None when git is not installed."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "alice",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "GIT_COMMITTER_NAME": "alice",
        "GIT_COMMITTER_EMAIL": "alice@example.com",
        "GIT_AUTHOR_DATE": when.isoformat(),
        "GIT_COMMITTER_DATE": when.isoformat(),
    }
    try:
        done = subprocess.run(
            ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
            cwd=app,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def commit(s: Story, files: Path, message: str) -> str | None:
    """Copy prompt files into the application's repository and commit them."""
    app = s.workspace / "support-app"
    (app / "prompts").mkdir(parents=True, exist_ok=True)
    for source in sorted(files.rglob("*.prompt.*")):
        target = app / "prompts" / source.relative_to(files)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    when = s.clock.now()
    if not (app / ".git").exists() and _git(app, "init", "-q", when=when) is None:
        return None
    _git(app, "add", "-A", when=when)
    _git(app, "commit", "-q", "-m", message, when=when)
    return _git(app, "rev-parse", "HEAD", when=when)


def _validate_and_stage(s: Story, refs: list[str]) -> None:
    alice = s.user("alice")
    for ref in refs:
        result = alice.prompts.validate(ref, sample="tickets-sample@1", runner=demo_runner)
        alice.prompts.promote(ref, to="development")
        alice.prompts.promote(ref, to="staging")
        s.say("alice", f"validates {ref}: {result.passed_count}/{result.sample_size} rows pass; → staging")


def prompts(s: Story) -> None:
    s.chapter("Day 2 — prompts live in the application's git repository")
    s.at(1, "11:00")
    sha = commit(s, HERE / "prompts", "Prompts for the support agent")
    s.facts["app_commits"] = [sha]
    alice = s.user("alice")
    report = alice.prompts.sync(s.workspace / "support-app" / "prompts")
    s.say(
        "alice",
        f"syncs {len(report.items)} prompt files from commit {str(sha)[:10]}: "
        f"{len(report.names('added'))} added",
    )
    for item in report.items:
        if item.name not in ("classify-ticket", "draft-reply"):
            alice.prompts.promote(item.ref, to="development")
    s.say("alice", "moves the ten other prompts to development")
    _validate_and_stage(s, ["classify-ticket-v1", "draft-reply-v1"])
    carol = s.user("carol")
    for ref in ("classify-ticket-v1", "draft-reply-v1"):
        carol.prompts.promote(ref, to="production", reason="first release of the support agent")
    s.say("carol", "promotes both to production (each needs its passing staging validation)")


def slot(s: Story) -> None:
    s.chapter("Day 2 — the support agent's slot, and a week of production traffic")
    s.at(1, "15:00")
    carol, alice = s.user("carol"), s.user("alice")
    carol.slots.create(SLOT, policy=HERE / "track.yaml")
    s.say("carol", f"creates slot {SLOT} with its own track policy (examples/demo/track.yaml)")
    first = alice.releases.create(
        SLOT,
        model="support-llm@1.0.0",
        prompts=["classify-ticket-v1", "draft-reply-v1"],
        app_version=s.facts["app_commits"][0],
    )
    carol.slots.bootstrap(SLOT, release=first.digest)
    s.facts["releases"] = [first.digest]
    s.say(
        "carol", f"bootstraps release {first.short} (support-llm@1.0.0 + classify-ticket-v1 + draft-reply-v1)"
    )
    svc = s.user("support-agent-svc")
    start = s.clock.now() + timedelta(minutes=5)
    lines = history(first.digest, 1500, start=start, over=timedelta(hours=41), behaviour=BASELINE, seed=11)
    loaded = svc.ingest(SLOT, lines)
    s.at(3, "09:00")
    s.say("svc", f"the application's logs: {loaded.inserted} transactions ingested (`charter txn ingest`)")


def first_rollout(s: Story) -> None:
    s.chapter("Days 4–8 — a new provider snapshot rolls out: shadow → 5 % → 20 % → 50 % → production")
    alice, bob, carol = s.user("alice"), s.user("bob"), s.user("carol")
    alice.models.register(
        "support-llm",
        {
            **yaml.safe_load((HERE / "models" / "support-llm.yaml").read_text()),
            "provider_model": "gpt-4o-2024-11-20",
        },
    )
    alice.models.eval("support-llm@1.1.0", dataset="tickets-holdout@1", metrics={"accuracy": 0.88})
    s.say("alice", "registers support-llm@1.1.0 (snapshot gpt-4o-2024-11-20: a MINOR bump); holdout 0.88")
    s.clock.advance(timedelta(hours=1))
    bob.models.signoff("support-llm@1.1.0", note="better on every queue; checked the failure samples")
    s.say("bob", "signs off support-llm@1.1.0")
    s.clock.advance(timedelta(hours=1))
    sha = commit(s, HERE / "changes" / "2-new-snapshot", "Pin prompts to support-llm 1.1.0")
    s.facts["app_commits"].append(sha)
    synced = alice.prompts.sync(s.workspace / "support-app" / "prompts")
    s.say("alice", f"commits 'Pin prompts to support-llm 1.1.0' ({str(sha)[:10]}) and syncs: "
          + ", ".join(i.ref for i in synced.items if i.status == "changed"))  # fmt: skip
    _validate_and_stage(s, ["classify-ticket-v2", "draft-reply-v2"])
    candidate = alice.releases.create(
        SLOT,
        model="support-llm@1.1.0",
        prompts=["classify-ticket-v2", "draft-reply-v2"],
        params={"max_tokens": 350},
        app_version=sha,
    )
    s.facts["releases"].append(candidate.digest)
    s.at(3, "14:00")
    carol.rollouts.start(SLOT, release=candidate.digest, rollback_plan=PLAN)
    s.say("carol", f"starts rolling out {candidate.short} (support-llm@1.1.0, prompts v2, max_tokens 350)")
    svc = s.user("support-agent-svc")
    behaviour = {s.facts["releases"][0]: BASELINE, candidate.digest: IMPROVED}

    def stage(count: int, hours: int, seed: int, *, then: Callable[[], None] | None = None) -> None:
        arms, last = serve(
            svc, SLOT, count, clock=s.clock, over=timedelta(hours=hours), behaviour=behaviour, seed=seed
        )
        if "candidate" in last:
            s.facts["traced"] = last["candidate"]  # a request the candidate served, to trace at the end
        s.say(
            "svc",
            f"{count} requests over {hours} h: " + ", ".join(f"{k} {v}" for k, v in sorted(arms.items())),
        )
        if then is not None:
            then()

    stage(400, 13, 21)
    s.at(4, "08:45")
    bob.rollouts.approve(SLOT)
    s.say("bob", "approves the model change (the track requires it for a MINOR change)")
    for day, count, seed in ((4, 2600, 22), (5, 1300, 23)):
        s.at(day, "09:00")
        step = carol.rollouts.advance(SLOT)
        s.say(
            "carol",
            f"advances, the gate passed: {step.rollout['stage']} "
            f"({step.rollout['traffic']['candidate']:g} %)",
        )
        stage(count, 13, seed)
    s.at(6, "09:00")
    step = carol.rollouts.advance(SLOT)
    s.say(
        "carol",
        f"advances, the gate passed: {step.rollout['stage']} ({step.rollout['traffic']['candidate']:g} %)",
    )
    stage(700, 6, 24)
    for item in ("rollback-tested", "oncall-briefed"):
        carol.rollouts.check(SLOT, item=item)
    s.say("carol", "checks off rollback-tested and oncall-briefed")
    stage(500, 12, 25)
    s.at(7, "09:00")
    step = carol.rollouts.advance(SLOT)
    s.say("carol", f"advances into production: moved {', '.join(step.moved)}")
    stage(600, 24, 26)


def second_rollout(s: Story) -> None:
    s.chapter("Days 9–10 — a prompt change leaks internal notes: an incident rolls it back at once")
    s.at(8, "11:00")
    alice, carol = s.user("alice"), s.user("carol")
    sha = commit(s, HERE / "changes" / "3-reply-context", "Give draft-reply the agent's notes")
    s.facts["app_commits"].append(sha)
    synced = alice.prompts.sync(s.workspace / "support-app" / "prompts")
    s.say("alice", f"commits 'Give draft-reply the agent's notes' ({str(sha)[:10]}) and syncs: "
          + ", ".join(i.ref for i in synced.items if i.status == "changed"))  # fmt: skip
    _validate_and_stage(s, ["draft-reply-v3"])
    candidate = alice.releases.create(
        SLOT,
        model="support-llm@1.1.0",
        prompts=["classify-ticket-v2", "draft-reply-v3"],
        params={"max_tokens": 350},
        app_version=sha,
    )
    s.facts["releases"].append(candidate.digest)
    s.at(8, "14:00")
    carol.rollouts.start(SLOT, release=candidate.digest, rollback_plan=PLAN)
    s.say("carol", f"starts rolling out {candidate.short} (draft-reply-v3; same model: no approval needed)")
    svc = s.user("support-agent-svc")
    behaviour = {s.facts["releases"][1]: IMPROVED, candidate.digest: IMPROVED}
    arms, _ = serve(svc, SLOT, 400, clock=s.clock, over=timedelta(hours=13), behaviour=behaviour, seed=31)
    s.say("svc", "400 requests over 13 h: " + ", ".join(f"{k} {v}" for k, v in sorted(arms.items())))
    s.at(9, "09:00")
    carol.rollouts.advance(SLOT)
    s.say("carol", "advances → canary-5 (the prompt's staging validation is checked before real traffic)")
    serve(svc, SLOT, 300, clock=s.clock, over=timedelta(hours=3), behaviour=behaviour, seed=32)
    s.at(9, "12:10")
    incident = carol.rollouts.incident(
        SLOT,
        severity="P0",
        release=candidate.digest,
        summary="replies quote the agents' internal notes to customers",
    )
    assert incident.rollback is not None
    s.facts["incident_rollback"] = incident.rollback.rollout["status"]
    s.say("carol", "reports a P0: replies quote internal notes to customers")
    s.say(
        "charter", f"rolls the candidate back in the same transaction: {incident.rollback.rollout['status']}"
    )
    s.at(9, "12:15")
    tick = carol.rollouts.tick()
    s.say("carol", f"`charter rollout tick`: {len(tick.items)} active rollouts left to judge")

"""A hypothesis state machine over the real rollout service (SQLite): whatever operators, reviewers,
admins, incidents, traffic and time do, a slot never has two active rollouts, the routing table
always gives the candidate exactly its stage's traffic, and no stage is left without a PASS or an
audited override."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from charter.clock import ManualClock
from charter.domain.routing import BUCKETS
from charter.errors import CharterError
from charter.service.registry import Registry
from tests.test_prompt_helpers import SQLITE_ONLY
from tests.test_slot_helpers import normal_metrics, traffic, world

SMALL_TRACK = {
    "name": "small",
    "approval": {"minor": "required"},
    "metrics": {"quality": "higher", "format_ok": "higher", "cost": "lower"},
    "shadow_sample": 0.5,
    "stages": [
        {"name": "shadow", "traffic": 0, "min_duration": "1h", "max_duration": "4h", "criteria": [
            {"kind": "threshold", "metric": "format_ok", "min": 0.9, "min_samples": 10}]},
        {"name": "canary", "traffic": 10, "min_duration": "1h", "max_duration": "4h", "criteria": [
            {"kind": "checklist", "items": ["smoke-tested"]}]},
        {"name": "half", "traffic": 50, "min_duration": "1h", "max_duration": "4h"},
        {"name": "production", "traffic": 100, "rollback_window": "1d"},
    ],
}  # fmt: skip
SLOTS = ("s1", "s2")
_counter = itertools.count()


@SQLITE_ONLY
def test_rollout_invariants_hold_under_any_sequence_of_actions(
    registry: Registry, tmp_path: Path, clock: ManualClock
) -> None:
    w = world(registry, tmp_path, clock)

    class Rollouts(RuleBasedStateMachine):
        @initialize()
        def slots(self) -> None:
            self.names = {}
            self.releases: dict[str, list[str]] = {}
            for slot in SLOTS:
                name = f"{slot}-{next(_counter)}"
                self.names[slot] = name
                w.admin.slots.create(name, policy=SMALL_TRACK)
                made = [
                    w.admin.releases.create(name, model=model, prompts=[prompt]).digest
                    for model, prompt in (
                        ("m@1.0.0", "greet-v1"),
                        ("m@1.1.0", "greet-v2"),
                        ("m@1.1.0", "greet-v1"),
                    )
                ]
                w.olga.slots.bootstrap(name, release=made[0])
                self.releases[name] = made
            first = self.names[SLOTS[0]]
            w.olga.rollouts.start(first, release=self.releases[first][1], rollback_plan="back")

        def _try(self, action: Callable[[], object]) -> None:
            with contextlib.suppress(
                CharterError
            ):  # refusals are allowed; the invariants say what must not happen
                action()

        @rule(slot=st.sampled_from(SLOTS), which=st.integers(0, 2))
        def start(self, slot: str, which: int) -> None:
            name = self.names[slot]
            self._try(
                lambda: w.olga.rollouts.start(name, release=self.releases[name][which], rollback_plan="back")
            )

        @rule(slot=st.sampled_from(SLOTS))
        def advance(self, slot: str) -> None:
            self._try(lambda: w.olga.rollouts.advance(self.names[slot]))

        @rule(slot=st.sampled_from(SLOTS))
        def override(self, slot: str) -> None:
            self._try(
                lambda: w.admin.rollouts.advance(self.names[slot], override=True, reason="owner accepts")
            )

        @rule(slot=st.sampled_from(SLOTS))
        def approve(self, slot: str) -> None:
            self._try(lambda: w.rita.rollouts.approve(self.names[slot]))

        @rule(slot=st.sampled_from(SLOTS))
        def check(self, slot: str) -> None:
            self._try(lambda: w.olga.rollouts.check(self.names[slot], item="smoke-tested"))

        @rule(slot=st.sampled_from(SLOTS), pause=st.booleans())
        def pause_or_resume(self, slot: str, pause: bool) -> None:
            rollouts = w.olga.rollouts
            self._try(
                lambda: rollouts.pause(self.names[slot]) if pause else rollouts.resume(self.names[slot])
            )

        @rule(slot=st.sampled_from(SLOTS))
        def abort(self, slot: str) -> None:
            self._try(lambda: w.olga.rollouts.abort(self.names[slot], reason="changed our minds"))

        @rule(slot=st.sampled_from(SLOTS), severity=st.sampled_from(["P0", "P2"]), which=st.integers(0, 2))
        def incident(self, slot: str, severity: str, which: int) -> None:
            name = self.names[slot]
            release = self.releases[name][which]
            self._try(lambda: w.olga.rollouts.incident(name, severity=severity, release=release, summary="x"))

        @rule(slot=st.sampled_from(SLOTS), good=st.booleans(), seed=st.integers(0, 1000))
        def requests(self, slot: str, good: bool, seed: int) -> None:
            metrics = normal_metrics(format_ok=1.0 if good else 0.0)
            self._try(lambda: traffic(w.sam, self.names[slot], 30, candidate=metrics, seed=seed))

        @rule(slot=st.sampled_from(SLOTS), seed=st.integers(0, 1000))
        def progress(self, slot: str, seed: int) -> None:
            """What a healthy rollout sees: good traffic, time, the checklist, an approval, an advance."""
            name = self.names[slot]
            self._try(lambda: traffic(w.sam, name, 30, seed=seed))
            clock.advance(timedelta(minutes=61))
            self._try(lambda: w.rita.rollouts.approve(name))
            self._try(lambda: w.olga.rollouts.check(name, item="smoke-tested"))
            self._try(lambda: w.olga.rollouts.advance(name))

        @rule(hours=st.integers(0, 5))
        def wait(self, hours: int) -> None:
            clock.advance(timedelta(hours=hours, minutes=1))

        @rule()
        def tick(self) -> None:
            self._try(w.olga.rollouts.tick)

        @invariant()
        def at_most_one_active_rollout_per_slot(self) -> None:
            with w.admin.store.read() as tx:
                for name in self.names.values():
                    slot = tx.slots.slot(name)
                    assert slot is not None
                    active = [r for r in tx.rollouts.rollouts_of(slot.id) if r.active]
                    assert len(active) <= 1

        @invariant()
        def the_candidate_gets_exactly_its_stages_traffic(self) -> None:
            for name in self.names.values():
                slot = w.admin.slots.show(name)
                table = w.sam.router.explain(name, "probe")["table"]
                assert table["version"] == slot.routing_version
                rollout = slot.rollout
                if rollout is None or rollout["phase"] == "awaiting_approval":
                    assert table["candidate"] is None and table["traffic"] == 0
                    continue
                stage = next(s for s in SMALL_TRACK["stages"] if s["name"] == rollout["stage"])
                assert table["traffic"] == stage["traffic"] == rollout["traffic"]["candidate"]
                expected_shadow = SMALL_TRACK["shadow_sample"] if stage["traffic"] == 0 else 0.0
                assert table["shadow_sample"] == expected_shadow
                # and the router really sends that share of the 10,000 buckets
                buckets = w.sam.router.explain(name, "probe")["candidate_buckets"]
                assert buckets == stage["traffic"] * BUCKETS // 100
                share = sum(w.sam.route(name, f"key-{i}").arm.value == "candidate" for i in range(400)) / 400
                assert abs(share - stage["traffic"] / 100) < 0.1

        @invariant()
        def no_stage_is_left_without_a_pass_or_an_audited_override(self) -> None:
            for event in w.admin.audit.log(subject="slot:*"):
                if event.action in ("rollout.advance", "rollout.complete"):
                    passed = event.evidence["verdict"]["verdict"] == "pass"
                    override = event.payload.get("override")
                    assert passed or (
                        override is not None and override["by"] == "admin" and override["reason"]
                    )

    run_state_machine_as_test(
        Rollouts,
        settings=settings(
            max_examples=8, stateful_step_count=30, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )  # fmt: skip
    assert w.admin.audit.verify().ok

"""Shared set-up for the deployment-track tests: a small world with a slot, releases and traffic.

(This module holds no tests.) `world(registry, tmp_path)` registers two model versions that pass
the promotion gate, two validated prompt versions that held staging, a slot on a quick track
policy (durations of hours, a few hundred samples) and two releases, the first bootstrapped.
`traffic(...)` sends simulated requests through the real router and recorder.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from charter.clock import ManualClock
from charter.service.prompt_validation import ValidationRun
from charter.service.registry import Registry
from tests.conftest import add_user
from tests.test_model_service import seed_dataset
from tests.test_prompt_helpers import write

QUICK_TRACK: dict[str, Any] = {
    "name": "quick",
    "approval": {"major": "required"},
    "metrics": {"quality": "higher", "format_ok": "higher", "cost": "lower"},
    "shadow_sample": 1.0,
    "stages": [
        {"name": "shadow", "traffic": 0, "min_duration": "1h", "max_duration": "1d", "criteria": [
            {"kind": "threshold", "metric": "format_ok", "min": 0.9, "min_samples": 50},
            {"kind": "incidents", "severity": ["P0", "P1"], "max": 0}]},
        {"name": "canary", "traffic": 5, "min_duration": "2h", "max_duration": "1d", "criteria": [
            {"kind": "non_inferiority", "metric": "quality", "margin": 0.02, "alpha": 0.05,
             "min_samples": 100},
            {"kind": "incidents", "severity": ["P0"], "max": 0}]},
        {"name": "half", "traffic": 50, "min_duration": "1h", "max_duration": "1d", "criteria": [
            {"kind": "cost_ratio", "metric": "cost", "max": 1.10, "min_samples": 100},
            {"kind": "checklist", "items": ["rollback-tested", "oncall-briefed"]}]},
        {"name": "production", "traffic": 100, "rollback_window": "30d"},
    ],
}  # fmt: skip

MODEL_SPEC = {
    "family": "claude",
    "provider": "anthropic",
    "provider_model": "claude-sonnet-4-5-20250929",
    "serving": {"temperature": 0.2, "max_tokens": 400},
    "primary_metrics": {"accuracy": "higher"},
}


@dataclass
class World:
    admin: Registry
    olga: Registry  # operator
    rita: Registry  # reviewer
    sam: Registry  # service (routes and records)
    clock: ManualClock
    slot: str
    production: str  # release digest (bootstrapped)
    candidate: str  # release digest (m@1.1.0, greet-v2)


def prompt_file(version: int) -> str:
    return (
        "name: greet\nmodel: m@1.0.0\nparams: {temperature: 0.5}\nvariables:\n  who: string\n"
        f'template: "Hello {{{{ who }}}} #{version}"\ntests: [{{kind: contains, value: "Hello"}}]\n'
    )


def world(
    registry: Registry, tmp_path: Path, clock: ManualClock, *, track: dict[str, Any] | None = None
) -> World:
    olga = add_user(registry, "olga", "operator")
    rita = add_user(registry, "rita", "reviewer")
    sam = add_user(registry, "sam", "service")
    registry.policies.apply({"validation": {"min_samples": 5, "min_pass_rate": 0.8}})
    golden = seed_dataset(registry, "golden", "holdout")
    registry.models.register("m", MODEL_SPEC)
    registry.models.eval("m@1.0.0", dataset=golden, metrics={"accuracy": 0.90})
    registry.models.register("m", {**MODEL_SPEC, "provider_model": "claude-sonnet-4-5-20251001"})
    registry.models.eval("m@1.1.0", dataset=golden, metrics={"accuracy": 0.92})
    rita.models.signoff("m@1.0.0")
    rita.models.signoff("m@1.1.0")
    sample = seed_dataset(registry, "sample", "production-sample")
    folder = tmp_path / "prompts"
    for version in (1, 2):
        write(folder, "greet.prompt.yaml", prompt_file(version))
        registry.prompts.sync(folder)
        ref = f"greet-v{version}"
        registry.prompts.record_validation(
            ref, sample=sample, run=ValidationRun(10, 10, (), 0.1, {"kind": "fake"})
        )
        registry.prompts.promote(ref, to="development")
        registry.prompts.promote(ref, to="staging")
    registry.slots.create("agent", policy=track or QUICK_TRACK)
    first = registry.releases.create("agent", model="m@1.0.0", prompts=["greet-v1"])
    second = registry.releases.create(
        "agent", model="m@1.1.0", prompts=["greet-v2"], params={"max_tokens": 600}
    )
    olga.slots.bootstrap("agent", release=first.digest[:10])
    sam.router.refresh_interval = 0  # see every change at once (other processes: within 1 s)
    return World(registry, olga, rita, sam, clock, "agent", first.digest, second.digest)


Metric = Callable[[random.Random, str], dict[str, float]]


def normal_metrics(
    quality: float = 0.80, cost: float = 0.010, format_ok: float = 1.0, quality_sd: float = 0.05
) -> Metric:
    def draw(rng: random.Random, arm: str) -> dict[str, float]:
        return {
            "quality": rng.gauss(quality, quality_sd),
            "format_ok": 1.0 if rng.random() < format_ok else 0.0,
            "cost": max(rng.gauss(cost, 0.001), 0.0),
        }

    return draw


def traffic(
    reg: Registry,
    slot: str,
    count: int,
    *,
    baseline: Metric | None = None,
    candidate: Metric | None = None,
    seed: int = 7,
    spread: timedelta = timedelta(0),
    clock: ManualClock | None = None,
) -> dict[str, int]:
    """`count` requests through `reg.transaction`, each recording metrics drawn for its arm (the
    shadow run too, during shadow); the clock moves by `spread / count` between requests."""
    rng = random.Random(seed)
    baseline = baseline or normal_metrics()
    candidate = candidate or baseline
    arms: dict[str, int] = {}
    step = spread / count if count else timedelta(0)
    router, interval = reg.router, reg.router.refresh_interval
    router.refresh_interval = 3600.0  # routing does not change during a burst: read the table once
    router.invalidate()
    try:
        _burst(reg, slot, count, rng, baseline, candidate, arms, seed, step, clock)
    finally:
        router.refresh_interval = interval
    reg.flush()
    return arms


def _burst(
    reg: Registry, slot: str, count: int, rng: random.Random, baseline: Metric, candidate: Metric,
    arms: dict[str, int], seed: int, step: timedelta, clock: ManualClock | None,
) -> None:  # fmt: skip
    for i in range(count):
        with reg.transaction(slot, key=f"user-{seed}-{i}") as txn:
            arm = txn.decision.arm.value
            txn.record(**(candidate if arm == "candidate" else baseline)(rng, arm), inputs={"length": i % 50})
            arms[arm] = arms.get(arm, 0) + 1
            if txn.shadow is not None:
                txn.record_shadow(**candidate(rng, "shadow"))
                arms["shadow"] = arms.get("shadow", 0) + 1
        if clock is not None and step:
            clock.advance(step)


PLAN = "roll back to the previous release with `charter slot rollback agent`"


def to_production(w: World, *, release: str | None = None, approve: bool = False) -> Any:
    """Drive a healthy candidate through the quick track; returns the step into production."""
    w.olga.rollouts.start("agent", release=release or w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 200, seed=1)
    w.clock.advance(timedelta(hours=1))
    if approve:
        w.rita.rollouts.approve("agent")
    w.olga.rollouts.advance("agent")  # → canary, 5 %
    traffic(w.sam, "agent", 4000, seed=2)
    w.clock.advance(timedelta(hours=2))
    w.olga.rollouts.advance("agent")  # → half, 50 %
    traffic(w.sam, "agent", 600, seed=3)
    for item in ("rollback-tested", "oncall-briefed"):
        w.olga.rollouts.check("agent", item=item)
    w.clock.advance(timedelta(hours=1))
    return w.olga.rollouts.advance("agent")  # → production

"""Simulated traffic for the demo: requests routed and recorded through the SDK, as an application
would (`reg.transaction`), and last week's production logs bulk-loaded (`reg.ingest`)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from charter.clock import ManualClock
from charter.service.registry import Registry

LANGUAGES = ("en", "en", "en", "de", "fr", "es")


@dataclass(frozen=True)
class Behaviour:
    """How a release behaves: the distributions its requests' metrics are drawn from."""

    quality: float  # mean answer quality (0–1, from the application's own grader)
    format_ok: float  # share of answers in the expected format
    cost: float  # mean cost per request, USD
    latency_ms: float

    def draw(self, rng: random.Random) -> dict[str, float]:
        return {
            "quality": min(max(rng.gauss(self.quality, 0.06), 0.0), 1.0),
            "format_ok": 1.0 if rng.random() < self.format_ok else 0.0,
            "cost": max(rng.gauss(self.cost, 0.0004), 0.0001),
        }


def _inputs(rng: random.Random) -> dict[str, object]:
    return {"ticket_length": int(rng.lognormvariate(5.3, 0.35)), "language": rng.choice(LANGUAGES)}


def serve(
    svc: Registry,
    slot: str,
    count: int,
    *,
    clock: ManualClock,
    over: timedelta,
    behaviour: Mapping[str, Behaviour],
    seed: int,
) -> tuple[dict[str, int], dict[str, str]]:
    """`count` requests spread evenly over `over`, each routed by the real router and recorded
    with metrics drawn for the release that served it (and for the shadow run, in shadow).
    Returns the requests per arm and the id of the last transaction of each arm."""
    rng = random.Random(seed)
    step = over / count
    arms: dict[str, int] = {}
    last: dict[str, str] = {}
    router = svc.router
    router.refresh_interval = 3600.0  # routing does not change during a burst: read the table once
    router.invalidate()
    try:
        for _ in range(count):
            with svc.transaction(slot, key=f"customer-{rng.randrange(1_000_000)}") as txn:
                txn.record(inputs=_inputs(rng), **behaviour[txn.release.digest].draw(rng))
                arm = txn.decision.arm.value
                arms[arm] = arms.get(arm, 0) + 1
                last[arm] = txn.id
                if txn.shadow is not None:
                    txn.record_shadow(**behaviour[txn.shadow.digest].draw(rng))
                    arms["shadow"] = arms.get("shadow", 0) + 1
            clock.advance(step)
    finally:
        router.refresh_interval = 0.0
        router.invalidate()
    svc.flush()
    return arms, last


def history(
    release: str, count: int, *, start: datetime, over: timedelta, behaviour: Behaviour, seed: int
) -> Iterator[str]:
    """Production log lines (JSONL, the `charter txn ingest` schema) for `release`."""
    rng = random.Random(seed)
    step = over / count
    for i in range(count):
        record = {
            "time": (start + step * i).isoformat(),
            "release": release,
            "key": f"customer-{rng.randrange(1_000_000)}",
            "metrics": behaviour.draw(rng),
            "latency_ms": round(rng.gauss(850, 120), 1),
        }
        yield json.dumps(record)

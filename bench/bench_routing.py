"""How quickly `route()` decides in-process (targets: median ≤ 2 µs per decision, ≥ 300,000/s on one core).

    .venv/bin/python -m bench.bench_routing [--quick]

A canary table (20 %), a shadow table and a production-only table; keys are distinct strings
(`user-<n>`), as in production, so no hashing result is reused. Each run times a batch of
`route(table, key)` calls with `time.perf_counter_ns`; the median per call is the median over runs
of (batch time / batch size), which removes the timer's own cost from the per-call figure.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from charter.domain.routing import RoutingTable, route

TABLES = {
    "canary 20 %": RoutingTable(
        "support-agent", 12, "rel-prod", "rel-cand", "r-1", "canary-small", 20.0, salt="r-1"
    ),
    "shadow": RoutingTable("support-agent", 11, "rel-prod", "rel-cand", "r-1", "shadow", 0.0, 1.0, "r-1"),
    "production only": RoutingTable.production_only("support-agent", 13, "rel-prod"),
}


def _measure(table: RoutingTable, keys: list[str], runs: int) -> list[float]:
    """Seconds per decision, one figure per run."""
    per_call = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        for key in keys:
            route(table, key)
        per_call.append((time.perf_counter_ns() - started) / len(keys) / 1e9)
    return per_call


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    batch, runs = (20_000, 5) if quick else (100_000, 31)
    keys = [f"user-{i}" for i in range(batch)]
    rows = []
    for name, table in TABLES.items():
        _measure(table, keys[:1000], 1)  # warm up
        samples = _measure(table, keys, runs)
        median = statistics.median(samples)
        rows.append(
            {
                "name": f"routing: route() — {name}",
                "median_s": median,
                "runs": runs,
                "batch": batch,
                "decisions_per_s": round(1 / median),
                "p90_s": sorted(samples)[int(0.9 * (len(samples) - 1))],
                "target": "≤ 2 µs median, ≥ 300,000 decisions/s",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run(Path("bench/.work"), "--quick" in sys.argv):
        print(row)

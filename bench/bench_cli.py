"""How quickly the CLI answers `--help` (heavy libraries must be imported lazily)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _median_seconds(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(workdir: Path, quick: bool) -> list[dict[str, Any]]:
    runs = 3 if quick else 15
    charter = str(Path(sys.executable).with_name("charter"))
    baseline = _median_seconds([sys.executable, "-c", "pass"], runs)
    help_time = _median_seconds([charter, "--help"], runs)
    return [
        {
            "name": "cli: charter --help",
            "median_s": help_time,
            "runs": runs,
            "baseline": "python -c pass",
            "baseline_median_s": baseline,
            "target": "≤ 0.300 s",
        }
    ]


if __name__ == "__main__":
    for row in run(Path("bench/.work"), "--quick" in sys.argv):
        print(row)

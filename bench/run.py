"""Run every benchmark and write the results into docs/benchmarks.md.

    python -m bench.run [--quick] [--only data,models,cli]

Each `bench/bench_*.py` module exposes `run(workdir, quick) -> list[dict]`. Results go to
`bench/results/latest.json` and replace the generated section of docs/benchmarks.md, together
with a description of the machine. `--quick` is a smoke test with small inputs (not recorded).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULES = (
    "cli", "data", "pack_index", "models", "prompts", "routing", "tracks", "ingest", "server", "web", "lake",
    "intel",
)  # fmt: skip
START, END = "<!-- results:start -->", "<!-- results:end -->"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "os": platform.platform(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(results: dict[str, list[dict[str, Any]]], info: dict[str, Any]) -> str:
    lines = [
        START,
        f"Measured {info['date']} at commit `{info['commit']}` on {info['cpu']} "
        f"({info['cores']} cores, {info['memory']}), Python {info['python']}, {info['os']}.",
        "",
    ]
    for module, rows in results.items():
        lines.append(f"### {module}")
        lines.append("")
        for row in rows:
            name = row.get("name", "?")
            details = ", ".join(f"{k}={_cell(v)}" for k, v in row.items() if k != "name")
            lines.append(f"- **{name}**: {details}")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small inputs; do not record results")
    parser.add_argument(
        "--only", default=",".join(MODULES), help="comma-separated subset of " + ",".join(MODULES)
    )
    args = parser.parse_args()
    workdir = ROOT / "bench" / ".work"
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {}
    for name in args.only.split(","):
        module = importlib.import_module(f"bench.bench_{name.strip()}")
        print(f"== {name}", flush=True)
        rows = module.run(workdir, args.quick)
        for row in rows:
            print("  ", json.dumps(row, default=str), flush=True)
        results[name] = rows
    if args.quick:
        return
    info = machine()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    latest = out / "latest.json"
    previous = json.loads(latest.read_text())["results"] if latest.exists() else {}
    results = {**previous, **results}  # modules not run this time keep their last results
    latest.write_text(json.dumps({"machine": info, "results": results}, indent=2, default=str))
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START in text and END in text:
        before, _, rest = text.partition(START)
        _, _, after = rest.partition(END)
        text = before + render(results, info) + after
    else:
        text += "\n" + render(results, info) + "\n"
    doc.write_text(text)
    print(f"wrote {doc.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()

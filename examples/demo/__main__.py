"""`make demo` (`python -m examples.demo`): build the example governance project and play its story
against the store in CHARTER_HOME (default ./.charter). `--reset` (`make demo-reset`) removes a
demo store and the demo's workspace, and nothing else.

The store must not exist yet: the story replays ten days of history on a simulated clock, so it
creates the store itself, with timestamps ten days back. Run it twice and the second run says the
store already holds the demo. A store holding anything else is never touched.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from examples.demo.store import inspect, reset, write_marker
from examples.demo.story import HERE, SLOT, play

from charter.config import Settings

EVIDENCE = (f"slot:{SLOT}", "support-llm@1.1.0", "ticket-router@1.0.0", "draft-reply-v3")


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reset", action="store_true", help="remove the demo store and its workspace")
    parser.add_argument(
        "--workspace", type=Path, default=HERE / "workspace", help="where the generated project goes"
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.reset:
        ok, message = reset(settings, args.workspace)
        out.write(message + "\n")
        return 0 if ok else 1
    found = inspect(settings)
    if found.kind == "demo":
        built = (found.marker or {}).get("finished_at", "earlier")
        out.write(
            f"The store in {settings.home} already holds the demo (built {built}); nothing to do.\n"
            "Look at it with `make run`; rebuild it with `make demo-reset && make demo`.\n"
        )
        return 0
    refusals = {
        "unfinished": "holds a demo that did not finish building",
        "empty": f"already exists ({found.detail}); the demo replays ten days of history into a new store",
        "other": f"holds other data ({found.detail})",
    }
    if found.kind in refusals:
        out.write(
            f"The store in {settings.home} {refusals[found.kind]}; nothing was changed.\n"
            + (
                "Run `make demo-reset` (it removes only a demo store or an empty one), then `make demo`,\n"
                if found.kind != "other"
                else ""
            )
            + "or give the demo a store of its own: CHARTER_HOME=/tmp/charter-demo make demo\n"
        )
        return 1
    write_marker(settings, {"status": "building", "started_at": datetime.now(UTC).isoformat()})
    started = time.perf_counter()
    out.write(f"Building the charter demo in {settings.home} (workspace: {args.workspace})\n")
    facts = play(settings, args.workspace, out)
    packs = epilogue(settings, facts, args.workspace, out)
    seconds = time.perf_counter() - started
    marker = {
        **facts,
        "status": "complete",
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(seconds, 1),
        "evidence": packs,
        "workspace": str(args.workspace),
    }
    write_marker(settings, marker)
    default = settings.home == (Path.cwd() / ".charter").absolute()
    run = "make run" if default else f"CHARTER_HOME={settings.home} make run"
    out.write(
        f"\nDone in {seconds:.1f} s: {facts['ledger_events']} audit events, the ledger verifies.\n"
        f"Now run `{run}` and open the web UI to see it all: slots, rollouts, the ledger, any trace.\n"
    )
    return 0


def epilogue(settings: Settings, facts: dict[str, Any], workspace: Path, out: TextIO) -> list[str]:
    """Trace one transaction with the CLI, verify the ledger, write evidence packs."""
    from charter.cli.main import main as charter
    from charter.service.setup import open_registry

    txn = facts["traced"]
    out.write(f"\nInvestigation — `charter trace {txn}`: what exactly produced this answer?\n")
    out.flush()
    try:
        charter(["trace", txn])
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    written = []
    with open_registry(settings) as registry:
        assert registry.audit.verify().ok, "the demo's ledger must verify"
        folder = workspace / "evidence"
        folder.mkdir(parents=True, exist_ok=True)
        for target in EVIDENCE:
            pack = registry.reports.evidence(target)
            path = folder / (pack.subject.replace(":", "-").replace("@", "-") + ".html")
            path.write_text(pack.html, encoding="utf-8")
            written.append(str(path))
    out.write(f"\nEvidence packs for auditors (`charter report TARGET --out FILE`) in {folder}:\n")
    for written_path in written:
        out.write(f"  {Path(written_path).name}\n")
    return written


if __name__ == "__main__":
    sys.exit(main())

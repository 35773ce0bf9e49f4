"""`charter report TARGET --out FILE.html`: the evidence pack of a model version, prompt version or
slot, as one self-contained HTML file."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import typer

from charter.cli.context import registry
from charter.cli.output import JsonFlag, print_json


def report(
    target: str = typer.Argument(
        ...,
        help="MODEL@X.Y.Z, PROMPT-vN (or PROMPT@N) or a slot name (SLOT or slot:SLOT); "
        "model:, prompt: and slot: prefixes remove any doubt.",
    ),
    out: Path = typer.Option(..., "--out", help="Where to write the HTML file (replaced if it exists)."),
    at: str = typer.Option(None, "--at", help="Show the state at this ISO 8601 time (no zone: UTC)."),
    json_out: bool = JsonFlag,
) -> None:
    """Write an evidence pack for auditors: the inventory entry, spec and lineage, every gate with
    its evidence, approvals and sign-offs with who and when, the change log from the audit ledger,
    and the ledger's verification with the chain head. Self-contained HTML (no scripts, nothing
    fetched), printable. Exits 4 after writing the pack when the ledger does not verify."""
    from charter.domain.times import parse_time

    pack = registry().reports.evidence(target, at=None if at is None else parse_time(at))
    _write(out, pack.html)
    if json_out:
        print_json({**pack.as_dict(), "out": str(out)})
    else:  # plain lines: a path or a hash is never cut or wrapped
        state = "now" if pack.at is None else f"at {pack.at.isoformat()}"
        verdict = (
            f"verified ({pack.verification['events']} events)"
            if pack.verified
            else f"DOES NOT VERIFY: {pack.verification['reason']}"
        )
        typer.echo(f"evidence pack for {pack.subject} ({state}): {out}")
        typer.echo(f"ledger head {pack.head_sequence} {pack.head_hash}; {verdict}")
        typer.echo(f"{len(pack.changes)} audited changes in the change log")
    if not pack.verified:  # the pack is written and says so; the exit code says it too
        sys.stderr.write(
            f"charter: the audit ledger does not verify: event {pack.verification['first_bad_sequence']}: "
            f"{pack.verification['reason']}\n"
        )
        raise typer.Exit(4)


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader never sees half a pack."""
    target = path.expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""The CLI reference (docs/cli.md), generated from the commands' own --help.

python -m charter.cli.reference > docs/cli.md
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import typer

from charter.cli.main import app

HEADER = """# CLI reference

Generated from the commands' own `--help` by `make docs` (`python -m charter.cli.reference`).
Every command accepts `--json` and then prints exactly what the REST API returns for the same
operation. Exit codes: 0 ok, 1 invalid input, 2 usage, 3 not found, 4 refused by a gate or policy
(or a ledger that does not verify), 5 permission denied.
"""


def _walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, command
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name in subcommands:
            yield from _walk(subcommands[name], [*path, name])


def render() -> str:
    root = typer.main.get_command(app)
    parts = [HEADER]
    for path, command in _walk(root, []):
        if not path:
            continue
        title = "charter " + " ".join(path)
        ctx = typer.Context(command, info_name=title, terminal_width=100, max_content_width=100)
        help_text = command.get_help(ctx)
        level = "##" if len(path) == 1 else "###"
        parts.append(f"{level} `{title}`\n\n```text\n{help_text.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())

"""Rendering results: tables for people, JSON (the REST API's body) for scripts."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import typer

from charter.wire import dumps

JsonFlag = typer.Option(False, "--json", help="Print machine-readable JSON (what the REST API returns).")


def print_json(value: Any) -> None:
    sys.stdout.write(dumps(value, indent=2) + "\n")


def emit(value: Any, json_out: bool, human: Callable[[], None]) -> None:
    """JSON when asked, else the human rendering."""
    if json_out:
        print_json(value)
    else:
        human()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    grid = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        grid.add_column(column)
    count = 0
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
        count += 1
    console = Console()
    if count == 0:
        console.print(f"[dim]{title + ': ' if title else ''}nothing to show[/dim]")
    else:
        console.print(grid)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """A two-column key/value listing."""
    from rich.console import Console
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in pairs:
        grid.add_row(key, "" if value is None else str(value))
    Console().print(grid)


def say(message: str) -> None:
    from rich.console import Console

    Console().print(message, highlight=False)


def yaml_text(value: Any) -> str:
    """`value` as block YAML for people: keys sorted, no anchors or aliases for repeated values."""
    import yaml

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    text: str = yaml.dump(value, Dumper=Plain, sort_keys=True, allow_unicode=True, width=10_000)
    return text.rstrip()

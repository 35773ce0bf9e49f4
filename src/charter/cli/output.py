"""Rendering results: tables for people, JSON (the REST API's body) for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import typer

JsonFlag = typer.Option(False, "--json", help="Print machine-readable JSON (what the REST API returns).")


def to_jsonable(value: Any) -> Any:
    if hasattr(value, "as_dict"):
        return to_jsonable(value.as_dict())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False, sort_keys=False) + "\n")


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

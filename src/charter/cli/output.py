"""Rendering results: tables for people, JSON (the REST API's body) for scripts."""

from __future__ import annotations

import os
import re
import sys
import unicodedata
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
    """Columns aligned with two spaces between them, the header (and title) in bold on a terminal.
    Cells are never wrapped or cut, so a piped table can be read by `grep`, `awk` or `cut`, and the
    200 rows of a prompt library print in milliseconds (Rich's table took a tenth of a second of
    CPU per hundred rows)."""
    cells = [[_cell(value) for value in row] for row in rows]
    if not cells:
        _write([_style(f"{title + ': ' if title else ''}nothing to show", _DIM)])
        return
    header = [_cell(column) for column in columns]
    widths = [max(_width(text) for text in column) for column in zip(header, *cells, strict=True)]
    lines = [] if title is None else [_style(title, _BOLD)]
    lines.append(_style(_line(header, widths), _BOLD))
    lines.extend(_line(row, widths) for row in cells)
    _write(lines)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """A two-column key/value listing; a value's further lines are indented under its first."""
    items = [(_cell(key), "" if value is None else str(value)) for key, value in pairs]
    if not items:
        return
    width = max(_width(key) for key, _ in items)
    lines = []
    for key, value in items:
        first, *rest = value.split("\n") or [""]
        lines.append((_style(key, _BOLD) + " " * (width - _width(key)) + "  " + first).rstrip())
        lines.extend((" " * (width + 2) + more).rstrip() for more in rest)
    _write(lines)


_BOLD, _DIM = "1", "2"
_CONTROL = str.maketrans({"\n": " ", "\r": " ", "\t": " ", "\x1b": "?"})


def _cell(value: Any) -> str:
    """A value on one line, without escape sequences of its own."""
    return "" if value is None else str(value).translate(_CONTROL)


def _width(text: str) -> int:
    """Columns `text` takes on a terminal: wide East Asian characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(
        value + " " * (width - _width(value)) for value, width in zip(values, widths, strict=True)
    ).rstrip()


def _style(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if text and _color() else text


def _color() -> bool:
    """Styles only on a terminal, and never with NO_COLOR set or TERM=dumb."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _write(lines: Iterable[str]) -> None:
    sys.stdout.write("".join(line + "\n" for line in lines))


def say(message: str) -> None:
    """Print a line of Rich console markup, never re-wrapped (templates print as they are).

    Most messages are plain text, or plain text in one style (a diff line, a heading): those are
    written here, styled like `table` on a terminal, without importing Rich (a tenth of a second's
    worth of instructions for `charter prompt show`). Anything Rich would transform — other markup,
    escapes, tabs, control characters, `:emoji:` codes — or a console Rich is told to treat as a
    terminal goes to Rich as before."""
    plain = _plain(message)
    if plain is None:
        from rich.console import Console

        Console().print(message, highlight=False, soft_wrap=True)
        return
    text, code = plain
    _write([text] if code is None else [_style(line, code) for line in text.split("\n")])


_STYLES = {"bold": _BOLD, "dim": _DIM, "red": "31", "green": "32", "yellow": "33"}
_ONE_STYLE = re.compile(r"\[(bold|dim|red|green|yellow)\](.*)\[/\1\]", re.DOTALL)
_EMOJI_CODE = re.compile(r":\S*?:")  # what Rich would look up as an emoji name
_NOT_PLAIN = re.compile(r"[\[\]\\\x00-\x09\x0b-\x1f\x7f]")  # markup, escapes, tabs, control characters


def _plain(message: str) -> tuple[str, str | None] | None:
    """(text, SGR code or None) when `message` is plain text, possibly in one style, that Rich would
    print unchanged; None when Rich must render it."""
    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ:
        return None  # Rich's own switches: it decides what is a terminal
    styled = _ONE_STYLE.fullmatch(message)
    text, code = (styled.group(2), _STYLES[styled.group(1)]) if styled else (message, None)
    if _NOT_PLAIN.search(text) or _EMOJI_CODE.search(text):
        return None
    return text, code


def escape(text: str) -> str:
    """`text` as Rich markup that prints it literally: what `rich.markup.escape` returns (a
    backslash before anything that would read as a tag, and before the backslashes preceding
    one), without importing Rich."""
    escaped = _TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    if escaped.endswith("\\") and not escaped.endswith("\\\\"):
        return escaped + "\\"
    return escaped


_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def yaml_text(value: Any) -> str:
    """`value` as block YAML for people: keys sorted, no anchors or aliases for repeated values."""
    import yaml

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    text: str = yaml.dump(value, Dumper=Plain, sort_keys=True, allow_unicode=True, width=10_000)
    return text.rstrip()

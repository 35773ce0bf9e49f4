"""`say` prints what Rich printed before, whether it takes the plain path or hands the message to
Rich, and `escape` is Rich's escape (the CLI stopped importing Rich for plain messages)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.markup import escape as rich_escape

from charter.cli import output
from charter.cli.output import escape, say

# Text with everything that matters to Rich: brackets, backslashes, colons, tabs, control
# characters, wide and combining characters, trailing spaces, new lines.
TEXT = st.lists(
    st.sampled_from([*"ab :[]/\\\t\r\x07\x1b\n日é\u0301-_", "smile", "bold", "red"]), max_size=30
).map("".join)

MESSAGES = [
    "",
    "plain words",
    "  indented, trailing spaces   ",
    "two\nlines\n",
    "ends with a blank line\n\n",
    "[bold]system[/bold]",
    "[green]+ added line[/green]",
    "[red]-removed line  [/red]",
    "[dim]a\nb[/dim]",
    "[green][/green]",
    "p010-v1 and p010-v5 have the same content",
    "~ param max_tokens: 201 → 205",
    "+ variable who: {'type': 'string', 'default': 'there'}",
    "a time 12:30:00 and :smile: and :not_an_emoji:",
    "tab\tseparated",
    "carriage\rreturn and bell\x07",
    "escape \x1b[31m sequence",
    "[yellow]in the registry but not in the folder (kept):[/] a, b",
    "  greet: added greet-v1  [dim]greet.prompt.yaml[/dim]",
    "a [link] that is not a tag, \\[bold] escaped, trailing backslash \\",
    "日本語のテンプレート e\u0301",
    "[bold]unclosed",
    "[bold]nested [red]inner[/red][/bold]",
]


def _rich(message: str, capsys: pytest.CaptureFixture[str]) -> str:
    Console().print(message, highlight=False, soft_wrap=True)
    return capsys.readouterr().out


def _ours(message: str, capsys: pytest.CaptureFixture[str]) -> str:
    say(message)
    return capsys.readouterr().out


@pytest.mark.parametrize("message", MESSAGES)
def test_say_prints_what_rich_printed(message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _ours(message, capsys) == _rich(message, capsys)


@pytest.mark.parametrize("message", MESSAGES)
def test_say_prints_escaped_text_as_rich_did(message: str, capsys: pytest.CaptureFixture[str]) -> None:
    for line in (escape(message), f"[green]{escape(message)}[/green]"):
        assert _ours(line, capsys) == _rich(line, capsys)


@given(text=TEXT)
def test_escape_is_richs_escape(text: str) -> None:
    assert escape(text) == rich_escape(text)


@given(text=TEXT, style=st.sampled_from([None, "bold", "dim", "red", "green", "yellow"]))
def test_any_text_prints_as_rich_printed_it(text: str, style: str | None) -> None:
    import contextlib
    import io

    message = escape(text) if style is None else f"[{style}]{escape(text)}[/{style}]"
    ours, theirs = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(ours):
        say(message)
    with contextlib.redirect_stdout(theirs):
        Console().print(message, highlight=False, soft_wrap=True)
    assert ours.getvalue() == theirs.getvalue()


def test_plain_messages_take_the_plain_path_and_the_rest_go_to_rich() -> None:
    assert output._plain("[green]+ a line[/green]") == ("+ a line", "32")
    assert output._plain("just text") == ("just text", None)
    for message in ("tab\there", "[link]", "12:30:00", "a\\b", "bell\x07", "[bold]a[/red]"):
        assert output._plain(message) is None, message


def test_rich_decides_when_it_is_told_what_a_terminal_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert output._plain("just text") is None

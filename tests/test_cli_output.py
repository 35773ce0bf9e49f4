"""The CLI's human tables: aligned, never wrapped or cut, one line per row, plain when piped."""

from __future__ import annotations

import pytest

from charter.cli.output import fields, table


def test_a_table_aligns_columns_and_keeps_every_cell_whole(capsys: pytest.CaptureFixture[str]) -> None:
    long = "a description far longer than any terminal is wide " * 3
    table(
        "prompts",
        ["name", "note"],
        [["p1", long], ["日本語", "x"], ["p3", None], ["two\nlines", "tab\there"]],
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prompts"
    assert lines[1] == "name       note"
    assert lines[2] == "p1         " + long.rstrip()
    assert lines[3] == "日本語     x"  # wide characters take two columns each
    assert lines[4] == "p3"  # an empty last cell leaves no trailing spaces
    assert lines[5] == "two lines  tab here"  # one line per row, whatever the cell holds
    assert "\x1b" not in "".join(lines)  # no styles when the output is not a terminal


def test_an_empty_table_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    table("versions of p", ["version"], [])
    assert capsys.readouterr().out == "versions of p: nothing to show\n"


def test_fields_indent_a_value_s_further_lines(capsys: pytest.CaptureFixture[str]) -> None:
    fields([("version", "p-v1"), ("content hash", "abc"), ("notes", "first\nsecond"), ("none", None)])
    assert capsys.readouterr().out.splitlines() == [
        "version       p-v1",
        "content hash  abc",
        "notes         first",
        "              second",
        "none",
    ]

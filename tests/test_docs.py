"""The documentation stays true to the code."""

from __future__ import annotations

from pathlib import Path

from charter.cli.reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_the_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == render(), "docs/cli.md is out of date: run `make docs`"


def test_every_command_has_help_text() -> None:
    reference = render()
    for block in reference.split("```text")[1:]:
        usage = block.strip().splitlines()
        assert usage[0].startswith("Usage:")
        assert any(line.strip() for line in usage[1:4]), f"no help text: {usage[0]}"

"""The pin guard: API models must name an immutable provider snapshot."""

from __future__ import annotations

import pytest

from charter.domain.pins import check_pinned
from charter.errors import UnpinnedModel


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("gpt-4o-2024-08-06", "date stamp"),
        ("gpt-4o-mini-2024-07-18", "date stamp"),
        ("claude-sonnet-4-5-20250929", "date stamp"),
        ("claude-3-5-sonnet@20240620", "date stamp"),
        ("claude-3-5-sonnet-v2@20241022", "date stamp"),
        ("gemini-1.5-pro-002", "revision"),
        ("gemini-2.0-flash-001", "revision"),
        ("gpt-4-0613", "revision"),
        ("mistral-large-2407", "revision"),
        ("anthropic.claude-3-sonnet-20240229-v1:0", "versioned revision"),
        ("meta.llama3-70b-instruct-v1:0", "versioned revision"),
    ],
)
def test_snapshots_are_accepted(name: str, rule: str) -> None:
    assert check_pinned(name).rule == rule


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("latest", "`latest`"),
        ("gpt-4o-latest", "`latest`"),
        ("chatgpt-4o-latest", "`latest`"),
        ("mistral-large-latest", "`latest`"),
        ("llama3:latest", "`latest`"),
        ("gpt-4o", "floating family name"),
        ("gpt-4", "floating family name"),
        ("claude-3-opus", "floating family name"),
        ("gemini-1.5-pro", "floating family name"),
        ("gpt-4-turbo-preview", "floating family name"),
        ("gpt-4o-2024-13-45", "is not a date"),
        ("", "empty"),
        ("  ", "empty"),
    ],
)
def test_floating_names_are_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(UnpinnedModel) as refused:
        check_pinned(name)
    assert why in str(refused.value)
    assert "gpt-4o-2024-08-06" in str(refused.value)  # says what would be accepted


def test_the_pins_policy_can_allow_more_patterns() -> None:
    allow = [r"text-embedding-3-(small|large)"]
    with pytest.raises(UnpinnedModel):
        check_pinned("text-embedding-3-small")
    pin = check_pinned("text-embedding-3-small", allow)
    assert (pin.rule, pin.pattern) == ("policy pattern", allow[0])
    with pytest.raises(UnpinnedModel):
        check_pinned("text-embedding-3-small-x", allow)  # the whole name must match


def test_no_policy_makes_latest_pinned() -> None:
    with pytest.raises(UnpinnedModel):
        check_pinned("gpt-4o-latest", [".*"])

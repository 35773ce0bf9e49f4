"""What changed between two prompt versions, and the evidence about each, side by side."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from charter.domain.prompts import PromptContent
from charter.service.prompt_results import PromptDiff, Validation
from charter.storage.prompts import PromptVersionRecord, ValidationRecord


def compare(
    a: PromptVersionRecord,
    b: PromptVersionRecord,
    validations: tuple[ValidationRecord | None, ValidationRecord | None],
    metrics: Mapping[str, Any],
) -> PromptDiff:
    """The text, variable, model, parameter and test changes from `a` to `b`, with each version's
    latest validation and production metrics."""
    ca, cb = PromptContent.from_document(a.content), PromptContent.from_document(b.content)
    da, db = ca.as_document(), cb.as_document()
    text = tuple(
        line.rstrip("\n")
        for line in difflib.unified_diff(_text_lines(ca), _text_lines(cb), fromfile=a.ref, tofile=b.ref)
    )
    tests_a, tests_b = [t.as_document() for t in ca.tests], [t.as_document() for t in cb.tests]
    va, vb = validations
    return PromptDiff(
        a.ref,
        b.ref,
        a.content_hash == b.content_hash,
        text,
        _mapping_changes(da["variables"], db["variables"]),
        {"a": ca.model, "b": cb.model, "changed": ca.model != cb.model},
        _mapping_changes(da["params"], db["params"]),
        {
            "added": [t for t in tests_b if t not in tests_a],
            "removed": [t for t in tests_a if t not in tests_b],
        },
        {
            "a": None if va is None else Validation.of(va).summary(),
            "b": None if vb is None else Validation.of(vb).summary(),
        },
        dict(metrics),
    )


def _text_lines(content: PromptContent) -> list[str]:
    lines: list[str] = []
    for label, text in content.texts:
        if content.messages is not None:
            lines.append(f"# {label}\n")
        lines.extend(line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True))
    return lines


def _mapping_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "added": {k: b[k] for k in sorted(b.keys() - a.keys())},
        "removed": {k: a[k] for k in sorted(a.keys() - b.keys())},
        "changed": {k: {"a": a[k], "b": b[k]} for k in sorted(a.keys() & b.keys()) if a[k] != b[k]},
    }

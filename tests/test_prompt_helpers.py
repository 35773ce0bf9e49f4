"""Shared helpers for the prompt library tests: prompt files, samples, runners and predicates.

The runners and predicates are importable as `tests.test_prompt_helpers:NAME`, the way users name
theirs on the command line. (This module holds no tests.)
"""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from charter.service.registry import Registry

# For tests whose subject does not depend on the database engine (file parsing, rendering, runner
# mechanics): SQLite only, to keep the suite quick. Storage-facing tests run on both engines.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

MODEL_SPEC = {
    "family": "claude",
    "provider": "anthropic",
    "provider_model": "claude-sonnet-4-5-20250929",
    "serving": {"temperature": 0.2},
}

SUMMARIZE = """\
name: summarize
description: Summarize a support ticket
tags: [support]
model: m@1.0.0
params: {temperature: 0.2, max_tokens: 300}
variables:
  ticket: string
  words: {type: integer, default: 50}
template: |
  Summarize in {{ words }} words:
  {{ ticket }}
tests:
  - {kind: contains, value: "Summarize"}
  - {kind: max_length, value: 2000}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def prompt_yaml(
    name: str, template: str = "Hello {{ who }}!", *, tests: str | None = None, model: str = "m@1.0.0"
) -> str:
    """A small prompt file with one string variable `who`."""
    checks = tests if tests is not None else '[{kind: contains, value: "Hello"}]'
    return (
        f"name: {name}\nmodel: {model}\nvariables:\n  who: string\n"
        f"template: {json.dumps(template)}\ntests: {checks}\n"
    )


def register_model(registry: Registry) -> None:
    registry.models.register("m", MODEL_SPEC)


def sync_one(
    registry: Registry, folder: Path, name: str = "greet", template: str = "Hello {{ who }}!"
) -> str:
    """Write and sync one prompt; return its latest version's ref."""
    write(folder, f"{name}.prompt.yaml", prompt_yaml(name, template))
    report = registry.prompts.sync(folder)
    return next(i.ref for i in report.items if i.name == name)


def sample(registry: Registry, folder: Path, name: str, rows: list[dict[str, Any]], fmt: str = "csv") -> str:
    """Snapshot rows as a dataset version; return its ref."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        path = folder / f"{name}.csv"
        columns = list(rows[0])
        lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    else:
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return registry.datasets.add(name, path, role="production-sample").version.ref


def allow_small_samples(registry: Registry, min_samples: int = 5, min_pass_rate: float = 0.8) -> None:
    registry.policies.apply({"validation": {"min_samples": min_samples, "min_pass_rate": min_pass_rate}})


# --- runners -------------------------------------------------------------------------------------


def echo(prompt: Any, *, params: dict[str, Any], model: str | None, row: dict[str, Any]) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def shout_when_asked(prompt: Any, *, params: dict[str, Any], model: str | None, row: dict[str, Any]) -> str:
    """Fails the `contains Hello` test for rows whose `who` starts with 'x'."""
    return "BYE" if str(row.get("who", "")).startswith("x") else str(prompt)


def crash(prompt: Any, *, params: dict[str, Any], model: str | None, row: dict[str, Any]) -> str:
    if str(row.get("who", "")).startswith("x"):
        raise RuntimeError("model exploded")
    return str(prompt)


def not_text(prompt: Any, *, params: dict[str, Any], model: str | None, row: dict[str, Any]) -> Any:
    return 42


RELEASE = threading.Event()


def hang(prompt: Any, *, params: dict[str, Any], model: str | None, row: dict[str, Any]) -> str:
    """Never answers until RELEASE is set (a time-out, deterministically)."""
    RELEASE.wait(30)
    return str(prompt)


def is_polite(output: str, row: dict[str, Any]) -> bool:
    return "please" in output.lower()


def broken_predicate(output: str, row: dict[str, Any]) -> bool:
    raise ValueError("bad predicate")

"""Names and reference strings, as the interface contract defines them.

- names are slugs `[a-z0-9][a-z0-9._-]*` that never end in `-v<digits>`;
- `model@1.2.3` (version), `model@production` (alias), `model` (latest version);
- `dataset@4` (version), `dataset` (latest version);
- `prompt-v3` or `prompt@3` (version), `prompt@staging` (environment), `prompt` (latest);
- `slot:name`, `model:name@1.2.3`, `prompt:name-v3`, `dataset:name@4` name audit subjects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from charter.domain.semver import Version
from charter.errors import InvalidName, InvalidReference

MAX_NAME = 100
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_VERSION_SUFFIX = re.compile(r"-v\d+$")
_WORD = re.compile(r"^[a-z][a-z0-9_-]*$")
_PROMPT_VERSION = re.compile(r"^(?P<name>.+)-v(?P<n>[1-9]\d*)$")


def check_name(name: str, kind: str = "a") -> str:
    if not name:
        raise InvalidName(kind, name, "it is empty")
    if len(name) > MAX_NAME:
        raise InvalidName(kind, name, f"it is longer than {MAX_NAME} characters")
    if not _SLUG.match(name):
        raise InvalidName(kind, name, "it has characters outside a-z, 0-9, '.', '_' and '-'")
    if _VERSION_SUFFIX.search(name):
        raise InvalidName(kind, name, "it ends in -v<digits>, which is how prompt versions are written")
    return name


def is_word(text: str) -> bool:
    """Aliases and environments are words, never numbers."""
    return bool(_WORD.match(text))


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: Version | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name

    @property
    def subject(self) -> str:
        return f"model:{self}"


def parse_model_ref(text: str) -> ModelRef:
    expected = (
        "NAME, NAME@MAJOR.MINOR.PATCH or NAME@ALIAS (for example support-llm@1.2.0 or support-llm@production)"
    )
    name, sep, tail = text.strip().partition("@")
    _name(name, "model", text, expected)
    if not sep:
        return ModelRef(name)
    if Version.is_version(tail):
        return ModelRef(name, version=Version.parse(tail))
    if is_word(tail):
        return ModelRef(name, alias=tail)
    raise InvalidReference(text, expected)


@dataclass(frozen=True)
class DatasetRef:
    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"

    @property
    def subject(self) -> str:
        return f"dataset:{self}"


def parse_dataset_ref(text: str) -> DatasetRef:
    expected = "NAME or NAME@N with a version number N ≥ 1 (for example tickets@4)"
    name, sep, tail = text.strip().partition("@")
    _name(name, "dataset", text, expected)
    if not sep:
        return DatasetRef(name)
    if tail.isdigit() and int(tail) >= 1 and not tail.startswith("0"):
        return DatasetRef(name, int(tail))
    raise InvalidReference(text, expected)


@dataclass(frozen=True)
class PromptRef:
    name: str
    version: int | None = None
    environment: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}-v{self.version}"
        if self.environment is not None:
            return f"{self.name}@{self.environment}"
        return self.name

    @property
    def subject(self) -> str:
        return f"prompt:{self}"


def parse_prompt_ref(text: str) -> PromptRef:
    expected = "NAME-vN, NAME@N, NAME@ENVIRONMENT or NAME (for example summarize-ticket-v3)"
    text = text.strip()
    name, sep, tail = text.partition("@")
    if sep:
        _name(name, "prompt", text, expected)
        if tail.isdigit() and not tail.startswith("0"):
            return PromptRef(name, version=int(tail))
        if is_word(tail):
            return PromptRef(name, environment=tail)
        raise InvalidReference(text, expected)
    match = _PROMPT_VERSION.match(text)
    if match:
        _name(match["name"], "prompt", text, expected)
        return PromptRef(match["name"], version=int(match["n"]))
    _name(text, "prompt", text, expected)
    return PromptRef(text)


def _name(name: str, kind: str, text: str, expected: str) -> None:
    if not name or not _SLUG.match(name) or _VERSION_SUFFIX.search(name) or len(name) > MAX_NAME:
        raise InvalidReference(text, expected)

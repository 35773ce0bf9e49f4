"""The prompt file format, read strictly.

`NAME.prompt.yaml` (or `.prompt.yml`) is a YAML mapping; `NAME.prompt.md` is Markdown whose YAML
front matter (between `---` lines) holds every field except the template, which is the body.
Accepted keys: `name`, `description`, `tags`, `model`, `params`, `variables`, `template` or
`messages`, `tests`. Anything else is refused, naming the key. Without `name`, the file name gives
it (`summarize-ticket.prompt.yaml` → `summarize-ticket`).

This module works on text and already-parsed mappings; reading files and YAML is the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from charter.domain.prompts import ContentError, PromptContent
from charter.domain.refs import check_name
from charter.errors import InvalidName

SUFFIXES = {".prompt.yaml": "yaml", ".prompt.yml": "yaml", ".prompt.md": "md"}
KEYS = ("name", "description", "tags", "model", "params", "variables", "template", "messages", "tests")
METADATA_KEYS = ("name", "description", "tags")


@dataclass(frozen=True)
class PromptFile:
    name: str
    content: PromptContent
    description: str
    tags: tuple[str, ...]
    format: str  # yaml | md
    stem: str  # the name the file name suggests

    @property
    def name_matches_file(self) -> bool:
        return self.name == self.stem


def prompt_format(filename: str) -> str | None:
    """`yaml` or `md` for a prompt file name, None for any other file."""
    for suffix, kind in SUFFIXES.items():
        if filename.endswith(suffix) and len(filename) > len(suffix):
            return kind
    return None


def file_stem(filename: str) -> str:
    for suffix in SUFFIXES:
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return filename


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter, body) of a Markdown prompt; the body is kept byte for byte."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n").rstrip() != "---":
        raise ContentError("a .prompt.md file must start with YAML front matter between two --- lines")
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n").rstrip() == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    raise ContentError("the front matter is not closed: add a line with --- after it")


def prompt_from_mapping(data: Any, *, format: str, stem: str, body: str | None = None) -> PromptFile:
    """A prompt file's fields, validated; `body` is a Markdown file's template."""
    if data is None and body is not None:
        data = {}
    if not isinstance(data, Mapping):
        raise ContentError("a prompt file must be a mapping of fields (name, template, variables, …)")
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise ContentError(f"unknown key(s) {', '.join(unknown)}; accepted: {', '.join(KEYS)}")
    fields = dict(data)
    if body is not None:
        for key in ("template", "messages"):
            if key in fields:
                raise ContentError(
                    f"`{key}` does not belong in the front matter of a .prompt.md file: its body is the "
                    "template (use a .prompt.yaml file for chat messages)"
                )
        fields["template"] = body
    name = fields.get("name", stem)
    if not isinstance(name, str):
        raise ContentError("`name` must be text")
    try:
        check_name(name, "prompt")
    except InvalidName as exc:
        raise ContentError(exc.message) from None
    description = fields.get("description") or ""
    if not isinstance(description, str):
        raise ContentError("`description` must be text")
    tags = fields.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        raise ContentError("`tags` must be a list of words")
    content_fields = {k: v for k, v in fields.items() if k not in METADATA_KEYS}
    return PromptFile(
        name,
        PromptContent.from_document(content_fields),
        description,
        tuple(tags),
        format,
        stem,
    )


def to_document(prompt: PromptFile) -> dict[str, Any]:
    """The fields a prompt file holds, in the order an exported file lists them."""
    body: dict[str, Any] = {"name": prompt.name}
    if prompt.description:
        body["description"] = prompt.description
    if prompt.tags:
        body["tags"] = list(prompt.tags)
    content = prompt.content.as_document()
    for key in ("model", "params", "variables"):
        if content[key]:
            body[key] = content[key]
    if "messages" in content:
        body["messages"] = content["messages"]
    elif prompt.format != "md":
        body["template"] = content["template"]
    if content["tests"]:
        body["tests"] = content["tests"]
    return body


def duplicate_names(found: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(file, problem) for every file whose prompt name another file in the folder also uses."""
    by_name: dict[str, list[str]] = {}
    for path, name in found:
        by_name.setdefault(name, []).append(path)
    problems = []
    for name, paths in sorted(by_name.items()):
        if len(paths) > 1:
            for path in paths:
                others = ", ".join(p for p in paths if p != path)
                problems.append(
                    (path, f"prompt name {name!r} is also used by {others}; names must be unique")
                )
    return problems

"""Prompt files on disk: reading a folder strictly, writing exports, and where git says they came from."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.domain.prompt_files import (
    PromptFile,
    duplicate_names,
    file_stem,
    prompt_format,
    prompt_from_mapping,
    split_front_matter,
    to_document,
)
from charter.domain.prompts import ContentError, model_pin_problem
from charter.errors import InvalidInput, InvalidReference
from charter.service.prompt_templates import content_problems, environment

GIT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LoadedPrompt:
    """One prompt file read from a folder, with what is wrong with it (if anything)."""

    path: str  # relative to the folder, with / separators
    file: PromptFile | None  # None when the file cannot be read at all
    errors: tuple[tuple[str, str], ...] = ()  # (code, message): problems that stop a sync
    used_variables: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GitInfo:
    root: Path
    commit: str | None  # None in a repository without commits
    dirty: frozenset[str] = field(default_factory=frozenset)  # changed or untracked, relative to root

    def source(self, file: Path) -> dict[str, Any]:
        try:
            relative = file.resolve().relative_to(self.root).as_posix()
        except ValueError:  # a symbolic link out of the repository
            return {"git_commit": None, "git_path": None, "git_dirty": None}
        return {"git_commit": self.commit, "git_path": relative, "git_dirty": relative in self.dirty}


def prompt_paths(folder: Path) -> list[Path]:
    """Every prompt file under `folder` (recursively, hidden folders skipped), sorted."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder; give the folder that holds your *.prompt.yaml files")
    found: list[Path] = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(current) / name for name in files if prompt_format(name) is not None)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def load_folder(folder: Path) -> list[LoadedPrompt]:
    """Every prompt file of a folder, parsed strictly; per-file problems are collected, not raised."""
    env = environment()
    loaded = [_load(env, folder, path) for path in prompt_paths(folder)]
    duplicates = dict(duplicate_names([(p.path, p.file.name) for p in loaded if p.file is not None]))
    return [
        LoadedPrompt(p.path, p.file, (*p.errors, ("duplicate-name", duplicates[p.path])), p.used_variables)
        if p.path in duplicates
        else p
        for p in loaded
    ]


def _load(env: Any, folder: Path, path: Path) -> LoadedPrompt:
    relative = path.relative_to(folder).as_posix()
    try:
        prompt = read_prompt_file(path)
    except ContentError as exc:
        return LoadedPrompt(relative, None, (("invalid-file", str(exc)),))
    syntax, used = content_problems(env, prompt.content)
    errors = [("template-syntax", problem) for problem in syntax]
    declared = {v.name for v in prompt.content.variables}
    undeclared = sorted(used - declared)
    if undeclared and not syntax:
        errors.append(
            (
                "undeclared-variable",
                f"the template uses undeclared variable(s) {', '.join(undeclared)}; declare them under "
                "`variables:`",
            )
        )
    pin = model_pin_problem(prompt.content.model)
    if pin:
        errors.append(("model-not-pinned", pin))
    return LoadedPrompt(relative, prompt, tuple(errors), frozenset(used))


def read_prompt_file(path: Path) -> PromptFile:
    """One prompt file; ContentError says what is wrong (invalid YAML, unknown keys, …)."""
    kind = prompt_format(path.name)
    if kind is None:
        raise ContentError("not a prompt file: names end in .prompt.yaml, .prompt.yml or .prompt.md")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ContentError("the file is not UTF-8 text") from None
    body = None
    if kind == "md":
        text, body = split_front_matter(text)
    import yaml  # imported on first use: listing and showing prompts never parse files

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" on line {where.line + 1 + (1 if kind == 'md' else 0)}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(f"invalid YAML{line}: {problem}") from None
    try:
        return prompt_from_mapping(data, format=kind, stem=file_stem(path.name), body=body)
    except InvalidReference as exc:
        raise ContentError(exc.message) from None


# --- writing ------------------------------------------------------------------------------------


_YAML_BREAKS = ("\r", "\x85", "\u2028", "\u2029")  # YAML would read these as plain newlines


@functools.cache
def _dumper() -> type[Any]:
    """A YAML dumper writing multi-line text as literal blocks, so exported templates read like the
    originals (made on first use, so importing this module does not import PyYAML)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        if any(c in value for c in _YAML_BREAKS):
            style: str | None = '"'  # escaped, so they survive
        else:
            style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def render_file(prompt: PromptFile) -> str:
    """The text of a prompt file (YAML, or Markdown with front matter)."""
    document = to_document(prompt)
    import yaml

    front = yaml.dump(document, Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=100)
    if prompt.format == "md":
        return f"---\n{front}---\n{prompt.content.template or ''}"
    return front


def export_path(prompt: PromptFile, recorded: str | None) -> str:
    """Where an export writes a prompt: the path it was synced from, else NAME.prompt.yaml/.md."""
    if recorded and prompt_format(Path(recorded).name) == prompt.format and _safe_relative(recorded):
        return recorded
    return f"{prompt.name}.prompt.{'md' if prompt.format == 'md' else 'yaml'}"


def _safe_relative(path: str) -> bool:
    parts = Path(path).parts
    return bool(parts) and not Path(path).is_absolute() and ".." not in parts


# --- git ----------------------------------------------------------------------------------------


def git_info(folder: Path) -> GitInfo | None:
    """The repository holding `folder`, its HEAD commit and changed files; None outside git."""
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    root = Path(top.strip()).resolve()
    commit = _git(folder, "rev-parse", "--verify", "--quiet", "HEAD")
    status = _git(
        root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", str(folder.resolve())
    )
    return GitInfo(root, commit.strip() if commit else None, _dirty(status or ""))


def _dirty(status: str) -> frozenset[str]:
    paths: set[str] = set()
    entries = status.split("\0")
    skip = False
    for entry in entries:
        if skip:
            skip = False
            continue
        if len(entry) < 4:
            continue
        paths.add(entry[3:])
        if entry[0] in "RC":
            skip = True  # the next entry is the rename's source path
    return frozenset(paths)


def _git(where: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # git is not installed, or hangs: record no git provenance
    return done.stdout if done.returncode == 0 else None


def source_of(folder: Path, relative: str, prompt: PromptFile, git: GitInfo | None) -> Mapping[str, Any]:
    source: dict[str, Any] = {"path": relative, "format": prompt.format}
    if git is not None:
        source.update(git.source(folder / relative))
    return source

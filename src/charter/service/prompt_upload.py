"""The server's half of `prompt sync` and `prompt check` for a remote client.

The client reads the folder (every prompt file as bytes, and what git says about each: commit,
path in the repository, uncommitted changes) and sends it. The server writes the files into a
temporary folder under the same relative paths and runs the embedded use case on it, so the files
are parsed, linted and registered by exactly the code an embedded command runs; only the git
facts and the folder's name are the client's, since they describe the client's side.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.data.manifest import validate_relative_path
from charter.domain.prompt_files import PromptFile, prompt_format
from charter.errors import InvalidInput, NotFound
from charter.service.prompt_check import CheckReport
from charter.service.prompt_files import load_folder
from charter.service.prompt_results import SyncReport
from charter.service.prompt_sync import checked_files, register_files

if TYPE_CHECKING:
    from charter.service.registry import Registry

MAX_FILES = 5_000
MAX_FILE_BYTES = 1024 * 1024
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_GIT_KEYS = ("git_commit", "git_path", "git_dirty")


@dataclass(frozen=True)
class PromptUpload:
    """One prompt file as the client read it: its path relative to the folder, its bytes, and its
    git facts (`git_commit`, `git_path`, `git_dirty`; None outside a git repository)."""

    path: str
    content: bytes
    git: Mapping[str, Any] | None = None


def sync_uploaded(
    registry: Registry, folder: str, files: Sequence[PromptUpload], commit: str | None
) -> SyncReport:
    """`prompts.sync` of the client's folder `folder`, whose files were uploaded."""
    commit = _commit(commit, "commit")
    gits = {upload.path: _git(upload) for upload in files}
    with tempfile.TemporaryDirectory(prefix="charter-prompts-") as temporary:
        root = Path(temporary)
        _write(root, files)
        checked = checked_files(registry, load_folder(root), lambda model: _model_registered(registry, model))

        def source(path: str, prompt: PromptFile) -> dict[str, Any]:
            recorded: dict[str, Any] = {"path": path, "format": prompt.format}
            git = gits.get(path)
            if git is not None:
                recorded.update(git)
            return recorded

        return register_files(registry, folder, checked, source, commit)


def check_uploaded(registry: Registry, folder: str, files: Sequence[PromptUpload]) -> CheckReport:
    """`prompts.check` of the client's folder `folder`, whose files were uploaded."""
    with tempfile.TemporaryDirectory(prefix="charter-prompts-") as temporary:
        root = Path(temporary)
        _write(root, files)
        report = registry.prompts.check(root)
    return dataclasses.replace(report, folder=folder)


def _model_registered(registry: Registry, model: str) -> bool:
    try:
        registry.models.get(model)
    except NotFound:
        return False
    return True


def _write(root: Path, files: Sequence[PromptUpload]) -> None:
    if len(files) > MAX_FILES:
        raise InvalidInput(f"send at most {MAX_FILES} prompt files at a time, not {len(files)}")
    seen: set[str] = set()
    for upload in files:
        path = validate_relative_path(upload.path)
        name = path.rsplit("/", 1)[-1]
        if prompt_format(name) is None:
            raise InvalidInput(
                f"{path} is not a prompt file name; they end in .prompt.yaml, .prompt.yml or .prompt.md",
                path=path,
            )
        if path in seen:
            raise InvalidInput(f"{path} is sent twice; send each file once", path=path)
        seen.add(path)
        if len(upload.content) > MAX_FILE_BYTES:
            raise InvalidInput(
                f"{path} has {len(upload.content)} bytes; a prompt file may have at most {MAX_FILE_BYTES}",
                path=path,
            )
        target = root.joinpath(*path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(upload.content)


def _git(upload: PromptUpload) -> dict[str, Any] | None:
    git = upload.git
    if git is None:
        return None
    if set(git) != set(_GIT_KEYS):
        raise InvalidInput(
            f"{upload.path}: git facts are exactly {', '.join(_GIT_KEYS)} (each may be null)",
            path=upload.path,
        )
    path, dirty = git["git_path"], git["git_dirty"]
    if path is not None and (not isinstance(path, str) or not path or len(path) > 4096):
        raise InvalidInput(f"{upload.path}: git_path must be a path in the repository or null")
    if dirty is not None and not isinstance(dirty, bool):
        raise InvalidInput(f"{upload.path}: git_dirty must be true, false or null")
    return {
        "git_commit": _commit(git["git_commit"], f"{upload.path}: git_commit"),
        "git_path": path,
        "git_dirty": dirty,
    }


def _commit(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _COMMIT.match(value):
        raise InvalidInput(f"{what} must be a git commit id (40 or 64 lower-case hex characters) or null")
    return value

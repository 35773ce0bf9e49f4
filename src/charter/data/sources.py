"""Which files a snapshot of a path contains, under which relative names.

A snapshot source is one file or one folder (walked recursively). Every file gets a POSIX path
relative to the root (a single file: its own name). Symbolic links are followed when they resolve
inside the root — their content is stored under the link's name — and refused when they resolve
outside it, dangle, or loop. Only regular files are stored; empty folders leave no trace.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from charter.data.manifest import UnsafePath, validate_relative_path
from charter.errors import InvalidInput


@dataclass(frozen=True)
class SourceFile:
    """A file to store: its manifest path, where to read it, and its size when listed."""

    path: str
    location: str
    size: int
    via_link: bool


class UnreadableSource(InvalidInput):
    def __init__(self, path: str, reason: str, hint: str) -> None:
        super().__init__(f"cannot snapshot {path}: {reason}; {hint}", path=path, reason=reason)


def list_files(path: Path) -> tuple[Path, list[SourceFile]]:
    """The resolved root and its files sorted by manifest path (InvalidInput if there are none)."""
    given = Path(path)
    try:
        info = os.stat(given)
    except FileNotFoundError:
        raise UnreadableSource(str(given), "it does not exist", "give an existing file or folder") from None
    except OSError as exc:
        raise UnreadableSource(
            str(given), exc.strerror or str(exc), "check the path and permissions"
        ) from None
    if stat.S_ISREG(info.st_mode):
        name = _name(given.name, str(given))
        return given, [SourceFile(name, os.path.realpath(given), info.st_size, via_link=False)]
    if not stat.S_ISDIR(info.st_mode):
        raise UnreadableSource(
            str(given), "it is neither a regular file nor a folder", "give a file or folder"
        )
    root = os.path.realpath(given)
    files: list[SourceFile] = []
    _walk(root, "", root, (root,), files)
    if not files:
        raise UnreadableSource(
            str(given), "the folder contains no files", "add files or snapshot another path"
        )
    files.sort(key=lambda item: item.path)
    return given, files


def list_single_file(path: Path) -> SourceFile:
    """The one file of a single-file snapshot (InvalidInput for a folder or anything else)."""
    root, files = list_files(path)
    if root.is_dir():
        raise UnreadableSource(
            str(path), "it is a folder", "give a single file (for a folder, add a dataset)"
        )
    return files[0]


def _walk(root: str, prefix: str, folder: str, ancestors: tuple[str, ...], out: list[SourceFile]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        where = prefix.rstrip("/") or "."
        raise UnreadableSource(where, exc.strerror or str(exc), "make the folder readable") from None
    for entry in entries:
        rel = prefix + _name(entry.name, prefix + entry.name)
        try:
            if entry.is_symlink():
                _follow(root, rel, entry.path, ancestors, out)
            elif entry.is_dir(follow_symlinks=False):
                _walk(root, rel + "/", entry.path, (*ancestors, entry.path), out)
            elif entry.is_file(follow_symlinks=False):
                out.append(
                    SourceFile(rel, entry.path, entry.stat(follow_symlinks=False).st_size, via_link=False)
                )
            else:
                raise UnreadableSource(
                    rel, "it is not a regular file (a device, socket or pipe)", "remove it"
                )
        except FileNotFoundError:
            raise UnreadableSource(
                rel, "it disappeared while the folder was read", "snapshot again"
            ) from None


def _follow(root: str, rel: str, link: str, ancestors: tuple[str, ...], out: list[SourceFile]) -> None:
    target = os.path.realpath(link)
    if target != root and not target.startswith(root.rstrip("/") + "/"):
        raise UnsafePath(rel, f"it is a symbolic link to {target}, outside the snapshot root {root}")
    try:
        info = os.stat(target)
    except OSError:
        raise UnreadableSource(
            rel, f"it is a symbolic link to {target}, which does not exist", "fix or remove it"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        if target in ancestors:
            raise UnreadableSource(
                rel, f"it is a symbolic link to {target}, which contains it (a loop)", "remove it"
            )
        _walk(root, rel + "/", target, (*ancestors, target), out)
    elif stat.S_ISREG(info.st_mode):
        out.append(SourceFile(rel, target, info.st_size, via_link=True))
    else:
        raise UnreadableSource(rel, "it links to something that is not a regular file", "remove it")


def _name(name: str, shown: str) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePath(shown.encode("utf-8", "replace").decode(), "its name is not valid UTF-8") from None
    if "\\" in name:
        raise UnsafePath(shown, "its name contains a backslash")
    return validate_relative_path(name)

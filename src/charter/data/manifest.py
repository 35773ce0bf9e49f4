"""Manifests: the files of a snapshot, each as an ordered list of content-defined chunks.

A manifest is a value: its canonical bytes are deterministic JSON (sorted keys, no white space,
UTF-8 — the RFC 8785 form for these documents), and its BLAKE3 digest is the identity of the
content. The same files with the same bytes give the same digest on every machine, so "unchanged
content creates no new version" is a digest comparison.

    {"files":[{"chunks":["<blake3>",…],"digest":"<blake3>","path":"train/a.csv","size":123},…],
     "format":"charter.manifest/1"}

Paths are POSIX, relative to the snapshot root, sorted by code point, and validated on the way in
and out (`validate_relative_path`): a manifest can never name a file outside its root, whoever
wrote it.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from charter.data.chunking import content_digest
from charter.errors import InvalidInput

FORMAT = "charter.manifest/1"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class UnsafePath(InvalidInput):
    """A path that could escape the snapshot root or cannot be stored portably."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"path {path!r} is not allowed in a snapshot: {reason}. Paths must be relative, use '/' "
            "as separator, be valid UTF-8 and contain no '', '.' or '..' parts and no backslash",
            path=path,
            reason=reason,
        )


class InvalidManifest(InvalidInput):
    def __init__(self, reason: str) -> None:
        super().__init__(
            f"not a valid charter manifest: {reason}; expected the JSON document written by "
            f"charter (format {FORMAT!r})",
            reason=reason,
        )


def validate_relative_path(path: str) -> str:
    """Return `path` if it is a safe relative POSIX path, else raise UnsafePath."""
    if not path:
        raise UnsafePath(path, "it is empty")
    if path.startswith("/"):
        raise UnsafePath(path, "it is absolute")
    if "\\" in path:
        raise UnsafePath(path, "it contains a backslash")
    if "\x00" in path:
        raise UnsafePath(path, "it contains a NUL character")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePath(path, f"it has a {part!r} component" if part else "it has an empty component")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePath(path, "it is not valid UTF-8") from None
    return path


@dataclass(frozen=True)
class FileEntry:
    """One file: its relative path, size, whole-content digest and chunk digests in order."""

    path: str
    size: int
    digest: str
    chunks: tuple[str, ...]

    def __post_init__(self) -> None:
        validate_relative_path(self.path)
        if self.size < 0:
            raise InvalidManifest(f"{self.path}: negative size {self.size}")
        if not _DIGEST.match(self.digest):
            raise InvalidManifest(f"{self.path}: {self.digest!r} is not a BLAKE3 hex digest")
        for chunk in self.chunks:
            if not _DIGEST.match(chunk):
                raise InvalidManifest(f"{self.path}: chunk {chunk!r} is not a BLAKE3 hex digest")
        if (self.size == 0) != (not self.chunks):
            raise InvalidManifest(f"{self.path}: a file has chunks exactly when it is not empty")

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "digest": self.digest, "chunks": list(self.chunks)}


@dataclass(frozen=True)
class Manifest:
    """The files of one snapshot, sorted by path."""

    files: tuple[FileEntry, ...]

    def __post_init__(self) -> None:
        paths = [entry.path for entry in self.files]
        for before, after in itertools.pairwise(paths):
            if not before < after:
                raise InvalidManifest(f"files must be sorted by path without repeats ({before!r}, {after!r})")
        folders = {path[:i] for path in paths for i, char in enumerate(path) if char == "/"}
        clash = folders.intersection(paths)
        if clash:
            raise InvalidManifest(f"{min(clash)!r} is both a file and a folder")

    def to_bytes(self) -> bytes:
        """The canonical encoding: sorted keys, no white space, UTF-8."""
        return self._encoded

    @cached_property
    def _encoded(self) -> bytes:
        document = {"format": FORMAT, "files": [entry.as_dict() for entry in self.files]}
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidManifest(f"it is not UTF-8 JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise InvalidManifest("the 'format' field is missing or unknown")
        files = document.get("files")
        if not isinstance(files, list):
            raise InvalidManifest("'files' is not a list")
        entries = []
        for item in files:
            if not isinstance(item, dict) or set(item) != {"path", "size", "digest", "chunks"}:
                raise InvalidManifest(
                    f"a file entry does not have exactly path, size, digest, chunks: {item!r}"
                )
            path, size, digest, chunks = item["path"], item["size"], item["digest"], item["chunks"]
            if not (
                isinstance(path, str)
                and isinstance(size, int)
                and not isinstance(size, bool)
                and isinstance(digest, str)
                and isinstance(chunks, list)
                and all(isinstance(chunk, str) for chunk in chunks)
            ):
                raise InvalidManifest(f"a file entry has fields of the wrong type: {item!r}")
            entries.append(FileEntry(path=path, size=size, digest=digest, chunks=tuple(chunks)))
        manifest = cls(tuple(entries))
        if manifest.to_bytes() != data:
            raise InvalidManifest("it is not in canonical form")
        return manifest

    @property
    def digest(self) -> str:
        """BLAKE3 of the canonical bytes: the identity of the content."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        return content_digest(self.to_bytes())

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def chunk_digests(self) -> set[str]:
        return {chunk for entry in self.files for chunk in entry.chunks}

    def file(self, path: str) -> FileEntry:
        """The entry for `path` (KeyError if the manifest has no such file)."""
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)

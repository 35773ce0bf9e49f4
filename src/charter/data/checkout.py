"""Checkout and verification: manifests back into files, every byte checked.

`checkout` writes each file into a temporary name next to its final one, checking every chunk
against its digest and the whole file against the file digest while writing, and renames it into
place only when both agree; a missing or corrupt blob raises an error naming the file and leaves
no half-written file under a final name. `verify` runs the same checks without writing.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import blake3

from charter.data.chunking import content_digest
from charter.data.manifest import FileEntry, Manifest, UnsafePath, validate_relative_path
from charter.errors import InvalidInput, NotFound
from charter.storage.blobs import BlobStore

_AHEAD = 8  # chunks fetched and verified ahead of the one being written (at least)


class CorruptBlob(InvalidInput):
    """A blob whose content does not hash to its name: the blob store was damaged."""

    def __init__(self, digest: str, where: str, actual: str) -> None:
        super().__init__(
            f"blob {digest} ({where}) is corrupt: its content hashes to {actual}. The blob store was "
            "damaged; restore the object from a backup or add the data again",
            digest=digest,
            where=where,
        )


class TargetNotEmpty(InvalidInput):
    def __init__(self, target: str) -> None:
        super().__init__(
            f"the checkout target {target} is not empty; choose an empty or new folder, or force "
            "the checkout to overwrite files of the same names",
            target=target,
        )


class CannotWrite(InvalidInput):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"cannot write {where}: {reason}; choose a target folder you can write to",
            where=where,
            reason=reason,
        )


@dataclass(frozen=True)
class CheckoutResult:
    files: int
    bytes_written: int


def load_manifest(blobs: BlobStore, digest: str) -> Manifest:
    """The manifest stored under `digest`, checked against it."""
    try:
        data = blobs.get(digest)
    except NotFound:
        raise NotFound(
            f"manifest {digest}", "the blob store does not hold this snapshot's manifest"
        ) from None
    actual = content_digest(data)
    if actual != digest:
        raise CorruptBlob(digest, "a manifest", actual)
    return Manifest.from_bytes(data)


def checkout(blobs: BlobStore, manifest: Manifest, target: Path, *, force: bool = False) -> CheckoutResult:
    """Write every file of `manifest` under `target`, byte for byte, verified."""
    target = Path(target)
    folders: set[str] = set()
    written = 0
    current = str(target)
    try:
        _prepare(target, force)
        with ThreadPoolExecutor(blobs.parallelism, thread_name_prefix="charter-fetch") as pool:
            chunks = _Chunks(pool, blobs, manifest.files, strict=True)
            for entry in manifest.files:
                current = entry.path
                folder = _parent(target, validate_relative_path(entry.path), folders)
                written += _write(chunks, entry, folder)
    except OSError as exc:  # the blob store's own failures surface as NotFound / CorruptBlob
        raise CannotWrite(f"{current} under {target}", exc.strerror or str(exc)) from None
    return CheckoutResult(files=len(manifest.files), bytes_written=written)


def verify(blobs: BlobStore, manifest: Manifest) -> list[str]:
    """Every problem found (missing or corrupt chunks, files that do not reassemble); [] if none."""
    problems: list[str] = []
    reported: set[str] = set()
    with ThreadPoolExecutor(blobs.parallelism, thread_name_prefix="charter-verify") as pool:
        chunks = _Chunks(pool, blobs, manifest.files, strict=False)
        for entry in manifest.files:
            hasher = blake3.blake3()
            size = 0
            intact = True
            for digest, data, problem in chunks.of(entry):
                if problem is not None:
                    intact = False
                    if digest not in reported:
                        reported.add(digest)
                        problems.append(f"{entry.path}: {problem}")
                    continue
                hasher.update(data)
                size += len(data)
            if intact and (size != entry.size or hasher.hexdigest() != entry.digest):
                problems.append(
                    f"{entry.path}: its chunks reassemble to {size} bytes with digest {hasher.hexdigest()}, "
                    f"not the recorded {entry.size} bytes with digest {entry.digest}"
                )
    return problems


# --- writing ---------------------------------------------------------------------------------


def _prepare(target: Path, force: bool) -> None:
    try:
        info = os.stat(target)
    except FileNotFoundError:
        target.mkdir(parents=True)
        return
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidInput(
            f"the checkout target {target} exists and is not a folder; give a folder", target=str(target)
        )
    if not force:
        with os.scandir(target) as entries:
            if next(entries, None) is not None:
                raise TargetNotEmpty(str(target))


def _parent(target: Path, path: str, folders: set[str]) -> Path:
    """Create the folders of `path` under `target`, refusing any part that is a link or a file."""
    parts = path.split("/")[:-1]
    current = target
    for i, part in enumerate(parts):
        current = current / part
        key = "/".join(parts[: i + 1])
        if key in folders:
            continue
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            current.mkdir()
        else:
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafePath(
                    path, f"{key!r} exists in the checkout target and is not a folder (a file or a link)"
                )
        folders.add(key)
    return current


def _write(chunks: _Chunks, entry: FileEntry, folder: Path) -> int:
    name = entry.path.rsplit("/", 1)[-1]
    final = folder / name
    temp = folder / f".{name}.{secrets.token_hex(4)}.charter-tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            hasher = blake3.blake3()
            size = 0
            for _, data, _ in chunks.of(entry):
                hasher.update(data)
                size += len(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        if size != entry.size or hasher.hexdigest() != entry.digest:
            raise InvalidInput(
                f"{entry.path}: its chunks reassemble to {size} bytes with digest {hasher.hexdigest()}, not "
                f"the recorded {entry.size} bytes with digest {entry.digest}; the manifest is inconsistent",
                path=entry.path,
            )
        try:
            os.replace(temp, final)
        except IsADirectoryError:
            raise UnsafePath(entry.path, "a folder of that name exists in the checkout target") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return size


# --- reading chunks --------------------------------------------------------------------------

_Fetched = tuple[str, bytes, str | None]


def _fetch(blobs: BlobStore, digest: str, path: str, strict: bool) -> _Fetched:
    try:
        data = blobs.get(digest)
    except NotFound:
        if strict:
            raise NotFound(
                f"chunk {digest} of {path}", "the blob store is missing data this version refers to"
            ) from None
        return digest, b"", f"chunk {digest} is missing"
    actual = content_digest(data)
    if actual != digest:
        if strict:
            raise CorruptBlob(digest, f"a chunk of {path}", actual)
        return digest, b"", f"chunk {digest} is corrupt (its content hashes to {actual})"
    return digest, data, None


class _Chunks:
    """Every chunk of `files`, in manifest order, fetched and checked ahead by the pool — across
    file boundaries, so that a folder of small files streams like one large file, and enough ahead
    to keep every thread busy (an object store answers each fetch after a round trip)."""

    def __init__(
        self, pool: ThreadPoolExecutor, blobs: BlobStore, files: Sequence[FileEntry], *, strict: bool
    ) -> None:
        self.pool, self.blobs, self.strict = pool, blobs, strict
        self.ahead = max(_AHEAD, 2 * blobs.parallelism)
        self.pending = ((entry.path, digest) for entry in files for digest in entry.chunks)
        self.queue: deque[Future[_Fetched]] = deque()
        self._fill()

    def of(self, entry: FileEntry) -> Iterator[_Fetched]:
        """The chunks of `entry`; the files must be read in manifest order, each to its end."""
        for _ in entry.chunks:
            result = self.queue.popleft().result()
            self._fill()
            yield result

    def _fill(self) -> None:
        while len(self.queue) < self.ahead:
            following = next(self.pending, None)
            if following is None:
                return
            path, digest = following
            self.queue.append(self.pool.submit(_fetch, self.blobs, digest, path, self.strict))

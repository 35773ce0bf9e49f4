"""The content-addressed blob store: the interface, and the local folder that implements it.

Objects are named by their BLAKE3 hex digest and live at `objects/<first two hex>/<digest>`
under the store's root, whatever the backend. Writing an object that exists is a no-op, and a
reader never sees a partial object. `put` need not be durable on return: callers write a batch
and call `sync()` once before they commit metadata that refers to it.

`LocalBlobStore` (here) keeps the objects in a local folder; `FsspecBlobStore`
(`charter.storage.blobs_fsspec`) keeps them under any fsspec URL (`s3://bucket/prefix`, …).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from charter.errors import NotFound

DIGEST = re.compile(r"^[0-9a-f]{64}$")
Buffer = bytes | bytearray | memoryview


class BlobStore(Protocol):
    """What charter needs from a blob store. Digests are BLAKE3 hex strings (64 characters)."""

    @property
    def location(self) -> str:
        """Where the store is, for people (no secrets)."""
        ...

    @property
    def parallelism(self) -> int:
        """How many reads or writes are worth running at once (a local disk needs few threads, an
        object store over HTTP many: each request waits on a round trip)."""
        ...

    def create(self) -> None:
        """Lay out the store (idempotent)."""
        ...

    def exists(self) -> bool: ...

    def has(self, digest: str) -> bool: ...

    def put(self, digest: str, data: Buffer) -> bool:
        """Store `data` under `digest` unless it is there already; True if newly written."""
        ...

    def put_many(self, items: Iterable[tuple[str, Buffer]]) -> list[bool]:
        """`put` for each item (concurrently where that helps), in order."""
        ...

    def get(self, digest: str) -> bytes:
        """The object's content; NotFound if the store does not hold it."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """The object as a binary file to stream from; NotFound if the store does not hold it."""
        ...

    def size(self, digest: str) -> int: ...

    def delete(self, digest: str) -> None:
        """Remove the object; nothing happens if it is not there."""
        ...

    def digests(self) -> Iterator[tuple[str, float, int]]:
        """Every stored object as (digest, modification time as epoch seconds, size)."""
        ...

    def clean_temporary(self, older_than: float) -> int:
        """Remove what interrupted writes left behind (older than the epoch time); the count."""
        ...

    def sync(self) -> None:
        """Make every object written so far durable."""
        ...


def missing_blob(digest: str) -> NotFound:
    return NotFound(f"blob {digest}", "the blob store is missing an object a version refers to")


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest):
        raise ValueError(f"{digest!r} is not a BLAKE3 hex digest")
    return digest


class LocalBlobStore:
    """A local folder. Writes go to a temporary file in the same file system and are renamed into
    place; `put` does not fsync, `sync()` does (once for a whole snapshot)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        # string prefixes: the hot paths build object paths by concatenation, not pathlib
        self._objects = str(self.objects) + os.sep
        self._tmp = str(self.tmp) + os.sep

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def parallelism(self) -> int:
        return min(4, os.cpu_count() or 1)

    def create(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        for i in range(256):
            (self.objects / f"{i:02x}").mkdir(parents=True, exist_ok=True)

    def exists(self) -> bool:
        return self.objects.is_dir()

    def path(self, digest: str) -> Path:
        return Path(self._path(digest))

    def _path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._objects}{digest[:2]}{os.sep}{digest}"

    def has(self, digest: str) -> bool:
        return os.path.exists(self._path(digest))

    def put(self, digest: str, data: Buffer) -> bool:
        final = self._path(digest)
        if os.path.exists(final):
            return False
        temp = f"{self._tmp}{digest[:16]}.{secrets.token_hex(6)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)
        os.replace(temp, final)
        return True

    def put_many(self, items: Iterable[tuple[str, Buffer]]) -> list[bool]:
        return [self.put(digest, data) for digest, data in items]  # a local write does not wait

    def get(self, digest: str) -> bytes:
        with self.open(digest) as handle:
            return handle.read()

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self._path(digest), "rb")
        except FileNotFoundError:
            raise missing_blob(digest) from None

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise missing_blob(digest) from None

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(digest))

    def digests(self) -> Iterator[tuple[str, float, int]]:
        if not self.objects.is_dir():
            return
        for shard in sorted(self.objects.iterdir()):
            with os.scandir(shard) as entries:
                for entry in entries:
                    if DIGEST.match(entry.name):
                        stat = entry.stat()
                        yield entry.name, stat.st_mtime, stat.st_size

    def clean_temporary(self, older_than: float) -> int:
        removed = 0
        if self.tmp.is_dir():
            for entry in os.scandir(self.tmp):
                if entry.stat().st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def sync(self) -> None:
        os.sync()

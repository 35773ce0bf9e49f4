"""The content-addressed blob store (a local folder).

Objects are named by their BLAKE3 hex digest and live at `objects/<first two hex>/<digest>`.
Writes go to a temporary file in the same file system and are renamed into place, so a reader
never sees a partial object; writing an object that exists is a no-op. `put` does not fsync:
callers write a batch and call `sync()` once before they commit metadata that refers to it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

from charter.errors import NotFound

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class LocalBlobStore:
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

    def create(self) -> None:
        """Lay out the folder (idempotent)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        for i in range(256):
            (self.objects / f"{i:02x}").mkdir(parents=True, exist_ok=True)

    def exists(self) -> bool:
        return self.objects.is_dir()

    def path(self, digest: str) -> Path:
        return Path(self._path(digest))

    def _path(self, digest: str) -> str:
        if not _DIGEST.match(digest):
            raise ValueError(f"{digest!r} is not a BLAKE3 hex digest")
        return f"{self._objects}{digest[:2]}{os.sep}{digest}"

    def has(self, digest: str) -> bool:
        return os.path.exists(self._path(digest))

    def put(self, digest: str, data: bytes | bytearray | memoryview) -> bool:
        """Store `data` under `digest` unless it is there already; True if newly written."""
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

    def get(self, digest: str) -> bytes:
        try:
            with open(self._path(digest), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise NotFound(
                f"blob {digest}", "the blob store is missing an object a version refers to"
            ) from None

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(digest))

    def digests(self) -> Iterator[tuple[str, float, int]]:
        """Every stored object as (digest, modification time, size)."""
        if not self.objects.is_dir():
            return
        for shard in sorted(self.objects.iterdir()):
            with os.scandir(shard) as entries:
                for entry in entries:
                    if _DIGEST.match(entry.name):
                        stat = entry.stat()
                        yield entry.name, stat.st_mtime, stat.st_size

    def clean_temporary(self, older_than: float) -> int:
        """Remove temporary files left by interrupted writes (older than the given epoch time)."""
        removed = 0
        if self.tmp.is_dir():
            for entry in os.scandir(self.tmp):
                if entry.stat().st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def sync(self) -> None:
        """Make every object written so far durable: one batched sync for a whole snapshot."""
        os.sync()

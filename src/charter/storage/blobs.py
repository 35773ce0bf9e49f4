"""The content-addressed blob store: the interface, and the local folder that implements it.

Objects are named by their BLAKE3 hex digest. A *loose* object lives at
`objects/<first two hex>/<digest>` under the store's root, whatever the backend. Writing an object
that exists is a no-op, and a reader never sees a partial object. `put` need not be durable on
return: callers write a batch and call `sync()` once before they commit metadata that refers to it.

A batch of many objects (a snapshot) goes through a `writer()` instead: `LocalBlobStore` appends
the objects to pack files (`charter.storage.packs`), which `commit()` makes durable and visible at
once; stores without packs write loose objects and `commit()` syncs. Every read (`has`, `get`,
`open`, `size`) finds an object whether it is loose or packed, and `collect` (the store's half of
`gc`) removes unreachable objects of both kinds.

`LocalBlobStore` (here) keeps the objects in a local folder; `FsspecBlobStore`
(`charter.storage.blobs_fsspec`) keeps them under any fsspec URL (`s3://bucket/prefix`, …), loose.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from charter.errors import NotFound

if TYPE_CHECKING:  # packs are imported when first used: a command that reads no blob never loads them
    from charter.storage.packs import PackSet, PackWriter
    from charter.storage.packs_gc import Collected

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

    def writer(self) -> BlobWriter:
        """A writer for a batch of objects (a snapshot), durable and visible once committed."""
        ...

    def collect(self, live: AbstractSet[str], older_than: float, *, dry_run: bool = False) -> Collected:
        """Remove every object not in `live` written before `older_than` (epoch seconds), loose or
        packed, and what interrupted writes left behind; what was (or would be) removed."""
        ...


class BlobWriter(Protocol):
    """Objects written as one batch. `put_many` may be called from several threads; after
    `commit()` every object put is durable (and readable by anyone); `abort()` drops what it can."""

    def put_many(self, items: Iterable[tuple[str, Buffer]]) -> list[bool]:
        """Store each object unless the store (or this batch) holds it; True where newly written."""
        ...

    def commit(self) -> object: ...

    def abort(self) -> None: ...


class LooseWriter:
    """A batch written as loose objects through `put_many`, made durable by one `sync()`; for
    stores without packs (an object store, a remote upload)."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def put_many(self, items: Iterable[tuple[str, Buffer]]) -> list[bool]:
        return self.store.put_many(items)

    def commit(self) -> None:
        self.store.sync()

    def abort(self) -> None:
        """Nothing to undo: loose objects nobody refers to are orphans that `gc` collects."""


def batch_writer(store: BlobStore) -> BlobWriter:
    """`store.writer()`, or a `LooseWriter` for a store that predates batch writers."""
    opener = getattr(store, "writer", None)
    return opener() if callable(opener) else LooseWriter(store)


def collect_loose(
    store: BlobStore,
    objects: Iterable[tuple[str, float, int]],
    live: AbstractSet[str],
    older_than: float,
    *,
    dry_run: bool,
) -> Collected:
    """The loose-object half of `collect`, for any store: every one of `objects` (digest, mtime,
    size) that is unreachable and older than `older_than` is deleted; then temporary leftovers."""
    from charter.storage.packs_gc import Collected

    result = Collected()
    for digest, mtime, size in list(objects):
        if digest in live:
            continue
        if mtime > older_than:
            result.kept_recent += 1
            continue
        result.removed += 1
        result.freed += size
        if not dry_run:
            store.delete(digest)
    if not dry_run:
        result.leftovers += store.clean_temporary(older_than)
    return result


def missing_blob(digest: str) -> NotFound:
    return NotFound(f"blob {digest}", "the blob store is missing an object a version refers to")


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest):
        raise ValueError(f"{digest!r} is not a BLAKE3 hex digest")
    return digest


class LocalBlobStore:
    """A local folder. A loose write goes to a temporary file in the same file system and is
    renamed into place; `put` does not fsync, `sync()` does (once for a whole snapshot). A
    `writer()` appends to pack files under `packs/` instead (see `charter.storage.packs`)."""

    def __init__(self, root: Path | str, *, pack_limit: int | None = None, direct_io: bool = True) -> None:
        self.root = Path(root)
        self.direct_io = direct_io
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.pack_limit = pack_limit
        # string prefixes: the hot paths build object paths by concatenation, not pathlib
        self._objects = str(self.objects) + os.sep
        self._tmp = str(self.tmp) + os.sep

    @cached_property
    def packs(self) -> PackSet:
        """The pack files under `packs/`, set up on first use."""
        from charter.storage.packs import PackSet

        return PackSet(self.root / "packs")

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def parallelism(self) -> int:
        return min(4, os.cpu_count() or 1)

    def create(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.packs.folder.mkdir(exist_ok=True)
        for i in range(256):
            (self.objects / f"{i:02x}").mkdir(parents=True, exist_ok=True)

    def exists(self) -> bool:
        return self.objects.is_dir()

    def path(self, digest: str) -> Path:
        """Where the loose copy of the object is (or would be)."""
        return Path(self._path(digest))

    def _path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._objects}{digest[:2]}{os.sep}{digest}"

    def has(self, digest: str) -> bool:
        """Whether the store holds the object. A pack committed by another process in the last few
        milliseconds may be missed (the folder's mtime is coarse): a caller then writes a copy."""
        if self.packs.locate(digest) is not None or os.path.exists(self._path(digest)):
            return True
        return self.packs.refresh() and self.packs.locate(digest) is not None

    def _loose_exists(self, digest: str) -> bool:
        return os.path.exists(self._path(digest))

    def put(self, digest: str, data: Buffer) -> bool:
        final = self._path(digest)
        if os.path.exists(final) or self.packs.locate(digest) is not None:
            return False
        self._write_loose(digest, final, data)
        return True

    def _write_loose(self, digest: str, final: str, data: Buffer) -> None:
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

    def put_many(self, items: Iterable[tuple[str, Buffer]]) -> list[bool]:
        return [self.put(digest, data) for digest, data in items]  # a local write does not wait

    def writer(self, *, dedup: bool = True) -> PackWriter:
        """A pack writer; without `dedup` it writes every object it is given (for repacking)."""
        from charter.storage.packs import PACK_LIMIT, PackWriter

        return PackWriter(
            self.packs,
            self.tmp,
            dedup=dedup,
            loose=self._loose_exists,
            sync_loose=self.sync,
            limit=PACK_LIMIT if self.pack_limit is None else self.pack_limit,
            direct=self.direct_io,
        )

    def get(self, digest: str) -> bytes:
        check_digest(digest)
        location = self.packs.locate(digest)
        if location is not None:
            with contextlib.suppress(FileNotFoundError):  # collected meanwhile: look again below
                return self.packs.read(location)
        try:
            with open(self._path(digest), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            pass
        self.packs.refresh(force=True)  # a folder's mtime is coarse: on a miss, always look again
        location = self.packs.locate(digest)
        if location is None:
            raise missing_blob(digest)
        try:
            return self.packs.read(location)
        except FileNotFoundError:
            raise missing_blob(digest) from None

    def open(self, digest: str) -> BinaryIO:
        if self.packs.locate(digest) is None:
            try:
                return open(self._path(digest), "rb")
            except FileNotFoundError:
                pass
        return io.BytesIO(self.get(digest))  # a packed object is at most a chunk or a manifest

    def size(self, digest: str) -> int:
        location = self.packs.locate(digest)
        if location is None:
            try:
                return self.path(digest).stat().st_size
            except FileNotFoundError:
                self.packs.refresh(force=True)
                location = self.packs.locate(digest)
        if location is None:
            raise missing_blob(digest)
        return location[2]

    def delete(self, digest: str) -> None:
        """Remove the object, loose or packed (a pack holding it is rewritten without it)."""
        from charter.storage.packs_gc import rewrite

        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(digest))
        for info in self.packs.packs():
            if digest in info.entries:
                rewrite(self.packs, info, info.entries.keys() - {digest}, self._repacker)
        self.packs.refresh(force=True)

    def digests(self) -> Iterator[tuple[str, float, int]]:
        """Every object, loose then packed (a packed object is as old as its pack), each once."""
        seen: set[str] = set()
        for digest, mtime, size in self.loose_digests():
            seen.add(digest)
            yield digest, mtime, size
        for info in self.packs.packs():
            for digest, (_, length) in info.entries.items():
                if digest not in seen:
                    seen.add(digest)
                    yield digest, info.mtime, length

    def loose_digests(self) -> Iterator[tuple[str, float, int]]:
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

    def collect(self, live: AbstractSet[str], older_than: float, *, dry_run: bool = False) -> Collected:
        from charter.storage.packs_gc import collect_packs

        result = collect_loose(self, self.loose_digests(), live, older_than, dry_run=dry_run)
        result.add(collect_packs(self.packs, self._repacker, live, older_than, dry_run=dry_run))
        return result

    def sync(self) -> None:
        os.sync()

    def unpack(self) -> int:
        """Write every packed object as a loose one, durably, then delete the packs; the number of
        objects unpacked. For moving a folder store to an object store, which reads loose objects."""
        from charter.storage.packs_gc import drop

        count = 0
        for info in self.packs.packs():
            for digest, (offset, length) in info.entries.items():
                final = self._path(digest)
                if not os.path.exists(final):
                    self._write_loose(digest, final, self.packs.read((info.name, offset, length)))
                    count += 1
            self.sync()
            drop(self.packs, info)
        self.packs.refresh(force=True)
        return count

    def _repacker(self) -> PackWriter:
        return self.writer(dedup=False)

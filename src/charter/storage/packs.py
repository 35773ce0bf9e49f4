"""Pack files: many blobs appended to one file, found through an index file beside it.

A local blob store keeps what a snapshot writes in packs instead of one file per blob: creating,
writing and renaming ten thousand small files costs seconds of kernel time, appending them to one
file costs milliseconds. Layout, under the store's root:

    packs/<name>.pack   the objects, back to back, after a 16-byte header (PACK_MAGIC)
    packs/<name>.idx    INDEX_MAGIC, the entry count (8 bytes), one entry per object — the raw
                        32-byte digest, offset and length (little-endian 8 bytes each), sorted by
                        digest — and a BLAKE3 digest of everything before it

A pack is written under a temporary name in `tmp/`, fsynced, and renamed into `packs/`; then its
index is written the same way and renamed beside it; then `packs/` itself is fsynced. Readers only
look at index files, so a reader never sees a partial pack: a pack without its index (a crash
between the two renames) or a temporary file is garbage that `gc` removes once it is older than
the grace period. A store's `packs/` folder is self-describing: no database row names a pack.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from charter.storage.pack_file import IOV_MAX, PackFile, write_fully

if TYPE_CHECKING:
    from charter.storage.pack_index import Locations, PackEntries

PACK_MAGIC = b"charter-pack-1\n\0"
INDEX_MAGIC = b"charter-index-1\n"
PACK_SUFFIX = ".pack"
INDEX_SUFFIX = ".idx"
_ENTRY = struct.Struct("<32sQQ")
_COUNT = struct.Struct("<Q")
_CHECK = 32
PACK_LIMIT = 128 * 1024 * 1024  # a pack is closed (and its fsync started) past this size

Buffer = bytes | bytearray | memoryview
Location = tuple[str, int, int]  # pack name, offset, length


class DamagedIndex(ValueError):
    """An index file that does not check out (truncated, or not an index)."""


@dataclass(frozen=True)
class PackInfo:
    """One pack as its index describes it."""

    name: str
    entries: PackEntries  # digest -> (offset, length), over the index's sorted array
    mtime: float  # when the pack was written: the age of every object in it
    size: int  # the pack file's size in bytes


def encode_index(entries: Mapping[str, tuple[int, int]]) -> bytes:
    body = bytearray(INDEX_MAGIC)
    body += _COUNT.pack(len(entries))
    for digest in sorted(entries):
        offset, length = entries[digest]
        body += _ENTRY.pack(bytes.fromhex(digest), offset, length)
    body += blake3.blake3(body).digest()
    return bytes(body)


def decode_index(data: bytes) -> PackEntries:
    head = len(INDEX_MAGIC) + _COUNT.size
    if len(data) < head + _CHECK or not data.startswith(INDEX_MAGIC):
        raise DamagedIndex("not a charter pack index")
    (count,) = _COUNT.unpack_from(data, len(INDEX_MAGIC))
    if len(data) != head + count * _ENTRY.size + _CHECK:
        raise DamagedIndex("the index is truncated")
    if blake3.blake3(data[:-_CHECK]).digest() != data[-_CHECK:]:
        raise DamagedIndex("the index does not match its checksum")
    return _entries(data, count)


def _entries(index: bytes, count: int) -> PackEntries:
    """The entries of an index file's bytes (checked, or just encoded here)."""
    from charter.storage.pack_index import PackEntries  # numpy: only once a pack is read

    return PackEntries.from_buffer(index, len(INDEX_MAGIC) + _COUNT.size, count)


def _length(run: list[tuple[str, Buffer]]) -> int:
    return sum(len(data) for _, data in run)


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PackSet:
    """The packs of one folder as read from their indexes, reloaded when the folder changes (another
    process may add or collect packs at any time). Safe to use from several threads."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._packs: dict[str, PackInfo] = {}
        self._where: Locations | None = None  # the packs found by the last load
        self._recent: list[PackInfo] = []  # packs this process committed since

    def locate(self, digest: str) -> Location | None:
        found = None if self._where is None else self._where.get(digest)
        if found is None:
            for info in self._recent:
                offset_length = info.entries.get(digest)
                if offset_length is not None:
                    return (info.name, *offset_length)
        return found

    def packs(self) -> list[PackInfo]:
        self.refresh()
        return list(self._packs.values())

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the folder changed since the last look; True if it did."""
        try:
            stamp = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp and not force:
            return False
        with self._lock:
            self._load(stamp)
        return True

    def add(self, info: PackInfo) -> None:
        """Record a pack this process has just committed (no need to wait for a reload)."""
        with self._lock:
            self._packs[info.name] = info
            self._recent = [*self._recent, info]  # replaced, not appended to: readers iterate it

    def read(self, location: Location) -> bytes:
        """The bytes at `location`; FileNotFoundError if the pack is gone (collected meanwhile)."""
        name, offset, length = location
        fd = os.open(self.pack_path(name), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            data = os.pread(fd, length, offset)
            while len(data) < length:
                more = os.pread(fd, length - len(data), offset + len(data))
                if not more:
                    raise OSError(f"pack {name} is shorter than its index says")
                data += more
            return data
        finally:
            os.close(fd)

    def pack_path(self, name: str) -> Path:
        return self.folder / f"{name}{PACK_SUFFIX}"

    def index_path(self, name: str) -> Path:
        return self.folder / f"{name}{INDEX_SUFFIX}"

    def _load(self, stamp: int | None) -> None:
        packs: dict[str, PackInfo] = {}
        if stamp is not None:
            for entry in os.scandir(self.folder):
                if not entry.name.endswith(INDEX_SUFFIX):
                    continue
                name = entry.name[: -len(INDEX_SUFFIX)]
                known = self._packs.get(name)
                info = self._restat(known) if known is not None else self._read_info(name)
                if info is not None:
                    packs[name] = info
        from charter.storage.pack_index import Locations

        where = Locations([(name, packs[name].entries) for name in sorted(packs)])
        self._packs, self._where, self._recent, self._stamp = packs, where, [], stamp

    def _restat(self, known: PackInfo) -> PackInfo | None:
        """A known pack with its current age (its index does not change; it may have gone)."""
        try:
            stat = os.stat(self.pack_path(known.name))
        except FileNotFoundError:
            return None
        return PackInfo(known.name, known.entries, stat.st_mtime, stat.st_size)

    def _read_info(self, name: str) -> PackInfo | None:
        """The pack's description, or None if its index or the pack itself is gone or damaged
        (a damaged index hides its pack: `gc` treats that pack as one without an index)."""
        try:
            entries = decode_index(self.index_path(name).read_bytes())
            stat = os.stat(self.pack_path(name))
        except (FileNotFoundError, DamagedIndex):
            return None
        return PackInfo(name, entries, stat.st_mtime, stat.st_size)


class _OpenPack:
    """A pack being written under a temporary name."""

    def __init__(self, tmp: Path, io: ThreadPoolExecutor, direct: bool) -> None:
        self.name = f"pack-{secrets.token_hex(12)}"
        self.temp = tmp / f"{self.name}{PACK_SUFFIX}.{secrets.token_hex(4)}"
        self.file = PackFile(self.temp, io, direct=direct)
        self.file.append([PACK_MAGIC])
        self.entries: dict[str, tuple[int, int]] = {}

    @property
    def size(self) -> int:
        return self.file.size


class PackWriter:
    """Appends objects to packs; `commit()` makes them durable and visible, `abort()` drops them.

    `put_many` may be called from several threads. With `dedup`, an object is skipped if a pack or
    this writer has it, or `loose(digest)` says the store holds it as a loose object; without,
    every object given is written (repacking copies objects out of a pack about to be deleted). A
    loose object another process wrote may not be durable yet, so if any was relied on, `commit()`
    calls `sync_loose()` too. A pack that grows past `limit` is closed and fsynced in the background
    while writing goes on in a new one.
    """

    def __init__(
        self,
        packs: PackSet,
        tmp: Path,
        *,
        dedup: bool = True,
        loose: Callable[[str], bool] | None = None,
        sync_loose: Callable[[], None] | None = None,
        limit: int = PACK_LIMIT,
        direct: bool = True,
    ) -> None:
        self.packs, self.tmp, self.dedup, self.limit, self.direct = packs, tmp, dedup, limit, direct
        self.loose, self.sync_loose = loose, sync_loose
        self._relied_on_loose = False
        self._lock = threading.Lock()
        self._current: _OpenPack | None = None
        self._closed: list[tuple[_OpenPack, Future[None]]] = []
        self._syncer: ThreadPoolExecutor | None = None
        self._mine: set[str] = set()
        self.finished = False

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def put_many(self, items: Iterable[tuple[str, Buffer]]) -> list[bool]:
        """Append the new objects among `items`; the objects of one call that fit in the current
        pack go to the file in one vectored write."""
        batch = list(items)
        if self.dedup:
            self.packs.refresh()  # once per batch, not once per object
            fresh = [self._new(digest) for digest, _ in batch]
        else:
            fresh = [True] * len(batch)
        with self._lock:
            run: list[tuple[str, Buffer]] = []
            run_bytes = 0
            for i, (digest, data) in enumerate(batch):
                if not fresh[i] or digest in self._mine:
                    fresh[i] = False
                    continue
                self._mine.add(digest)
                used = self._current.size if self._current is not None else len(PACK_MAGIC)
                if run and (used + run_bytes + len(data) > self.limit or len(run) >= IOV_MAX):
                    self._append(run)
                    run, run_bytes = [], 0
                run.append((digest, data))
                run_bytes += len(data)
            if run:
                self._append(run)
        return fresh

    def _new(self, digest: str) -> bool:
        if digest in self._mine or self.packs.locate(digest) is not None:
            return False
        if self.loose is not None and self.loose(digest):
            self._relied_on_loose = True
            return False
        return True

    def _append(self, run: list[tuple[str, Buffer]]) -> None:
        """Write `run` at the end of the current pack (a new one if it would overflow); under the lock."""
        pack = self._pack_for(_length(run))
        offset = pack.size
        pack.file.append([data for _, data in run])
        for digest, data in run:
            pack.entries[digest] = (offset, len(data))
            offset += len(data)

    def commit(self) -> list[PackInfo]:
        """fsync every pack, write its index, rename both into place, fsync the folder."""
        if self.finished:
            return []
        with self._lock:
            self._close_current()
            closed, self._closed = self._closed, []
        try:
            for _, synced in closed:
                synced.result()
            committed: list[PackInfo] = []
            if closed:
                self.packs.folder.mkdir(exist_ok=True)  # a store laid out before packs existed
            for pack, _ in closed:
                os.replace(pack.temp, self.packs.pack_path(pack.name))
                index_temp = self.tmp / f"{pack.name}{INDEX_SUFFIX}.{secrets.token_hex(4)}"
                index = encode_index(pack.entries)
                _write_durably(index_temp, index)
                os.replace(index_temp, self.packs.index_path(pack.name))
                stat = os.stat(self.packs.pack_path(pack.name))
                committed.append(
                    PackInfo(pack.name, _entries(index, len(pack.entries)), stat.st_mtime, stat.st_size)
                )
            if committed:
                fsync_folder(self.packs.folder)
                for info in committed:
                    self.packs.add(info)
            if self._relied_on_loose and self.sync_loose is not None:
                self.sync_loose()
            return committed
        finally:
            self.finished = True
            self._stop_syncer()

    def abort(self) -> None:
        """Drop everything written (temporary files only: nothing was visible yet)."""
        with self._lock:
            self._close_current()
            closed, self._closed = self._closed, []
        for pack, synced in closed:
            with contextlib.suppress(Exception):  # the write is abandoned anyway
                synced.result()
            pack.file.abandon()
        self.finished = True
        self._stop_syncer()

    def _pack_for(self, size: int) -> _OpenPack:
        pack = self._current
        if pack is not None and pack.entries and pack.size + size > self.limit:
            self._close_current()
            pack = None
        if pack is None:
            pack = self._current = _OpenPack(self.tmp, self._io(), self.direct)
        return pack

    def _close_current(self) -> None:
        pack, self._current = self._current, None
        if pack is None:
            return
        if not pack.entries:
            pack.file.abandon()
            return
        self._closed.append((pack, self._io().submit(pack.file.finish)))

    def _io(self) -> ThreadPoolExecutor:
        """The thread that writes and fsyncs this writer's packs, in order, while callers hash."""
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(1, thread_name_prefix="charter-pack-io")
        return self._syncer

    def _stop_syncer(self) -> None:
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)
            self._syncer = None


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        write_fully(fd, data, 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def orphans(folder: Path, known: Iterable[str]) -> Iterator[tuple[Path, float]]:
    """Files in `folder` that no readable index accounts for (a pack without its index, an index
    without its pack or a damaged one), with their modification times."""
    keep = set(known)
    if not folder.is_dir():
        return
    for entry in os.scandir(folder):
        name, dot, suffix = entry.name.rpartition(".")
        if dot and f".{suffix}" in (PACK_SUFFIX, INDEX_SUFFIX) and name in keep:
            continue
        try:
            yield Path(entry.path), entry.stat().st_mtime
        except FileNotFoundError:
            continue

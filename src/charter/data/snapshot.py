"""Snapshots: files in, chunks and a manifest out, in the deduplicating blob store.

`snapshot` reads every file once. Each byte is cut into content-defined chunks, each chunk is
hashed and stored unless the store has it already, and the whole-file digest is computed in the
same pass. Everything goes through one batch writer of the store (`BlobStore.writer()`: on a
local store, pack files written sequentially, fsynced as each fills up and committed together; on
an object store, loose objects), the manifest too, and the batch is committed once at the end: when
`snapshot` returns, everything the manifest refers to is durable and the caller may commit
metadata that names it. If the snapshot fails, the batch is aborted.

Work is spread over a few threads (BLAKE3, the chunk cutter and file writes release the GIL):

- small files (up to one read window) are read, cut, hashed and stored by the workers, in batches
  (each batch's new chunks go to the writer in one `put_many`, which an object store runs
  concurrently);
- a large file is read by the calling thread through a ring of reused buffers; its chunks are
  hashed and stored by the workers, and its whole-file digest is updated in order by one more
  thread, while the next window is read.

There are as many workers as the blob store says are worth running at once (`parallelism`): a
few for a local disk, more for an object store, where each write waits on a round trip.

`checkout`, `verify` and `load_manifest` live in `charter.data.checkout` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
from pyfastcdc import FastCDC

from charter.data.checkout import CheckoutResult, CorruptBlob, TargetNotEmpty, checkout, load_manifest, verify
from charter.data.chunking import WINDOW, chunk_spans, content_digest, new_chunker, windows
from charter.data.manifest import FileEntry, Manifest, validate_relative_path
from charter.data.sources import SourceFile, UnreadableSource, list_files, list_single_file
from charter.storage.blobs import BlobStore, BlobWriter, batch_writer

__all__ = [
    "CheckoutResult",
    "CorruptBlob",
    "SnapshotResult",
    "TargetNotEmpty",
    "checkout",
    "load_manifest",
    "snapshot",
    "store_file",
    "verify",
]

Progress = Callable[[int], None]

_BUFFERS = 3  # read windows in flight for one large file
_BATCH_FILES = 32  # small files per task (amortises the hand-over to a worker)
_BATCHES_AHEAD = 8  # small-file batches in flight at most (bounds the memory they hold)
_PROGRESS_STEP = 4 * 1024 * 1024


@dataclass(frozen=True)
class SnapshotResult:
    """What a snapshot stored.

    `bytes_new` counts the blobs newly written (chunks and the manifest); `chunks_total` counts
    the distinct chunks of the snapshot and `chunks_new` those the store did not have before.
    """

    manifest: Manifest
    manifest_digest: str
    bytes_read: int
    bytes_new: int
    chunks_total: int
    chunks_new: int


def snapshot(
    blobs: BlobStore,
    path: Path,
    *,
    progress: Progress | None = None,
    threads: int | None = None,
    present: AbstractSet[str] = frozenset(),
) -> SnapshotResult:
    """Store a file or a folder (recursively); see the module docstring.

    `progress(n)` is called from the calling thread as bytes are read. `threads` is the number of
    hashing/writing workers (default: the blob store's `parallelism`). `present` names chunks the
    store is known to hold (those of a committed version, which `gc` never removes): they are not
    even looked up, which saves a round trip per chunk on an object store.
    """
    _, files = list_files(Path(path))
    return _store(blobs, files, progress, threads, present)


def store_file(
    blobs: BlobStore, path: Path, *, progress: Progress | None = None, name: str | None = None
) -> SnapshotResult:
    """Store a single file (model weights, say): a manifest with one entry named after the file,
    or `name` — give a fixed name when the manifest must not depend on what the file is called."""
    source = list_single_file(Path(path))
    if name is not None:
        source = dataclasses.replace(source, path=validate_relative_path(name))
    return _store(blobs, [source], progress, None, frozenset())


def _store(
    blobs: BlobStore,
    files: list[SourceFile],
    progress: Progress | None,
    threads: int | None,
    present: AbstractSet[str],
) -> SnapshotResult:
    workers = threads or blobs.parallelism
    batch = batch_writer(blobs)
    try:
        with _Writer(batch, progress, workers, present) as writer:
            entries = writer.store_all(files)
        manifest = Manifest(tuple(entries))
        encoded = manifest.to_bytes()
        (manifest_new,) = batch.put_many([(manifest.digest, encoded)])
        batch.commit()
    except BaseException:
        batch.abort()
        raise
    return SnapshotResult(
        manifest=manifest,
        manifest_digest=manifest.digest,
        bytes_read=writer.bytes_read,
        bytes_new=writer.bytes_new + (len(encoded) if manifest_new else 0),
        chunks_total=len(writer.seen),
        chunks_new=writer.chunks_new,
    )


class _Writer:
    """The thread pool and the counters of one snapshot."""

    def __init__(
        self, blobs: BlobWriter, progress: Progress | None, workers: int, present: AbstractSet[str]
    ) -> None:
        self.blobs = blobs
        self.present = present
        self.progress = progress
        self.workers = max(1, workers)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="charter-chunk")
        self.file_hasher = ThreadPoolExecutor(1, thread_name_prefix="charter-digest")
        self._local = threading.local()
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.bytes_read = 0
        self.bytes_new = 0
        self.chunks_new = 0
        self._unreported = 0
        self._buffers: list[bytearray] = []

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.file_hasher.shutdown(wait=True, cancel_futures=True)

    def store_all(self, files: list[SourceFile]) -> list[FileEntry]:
        """Entries for `files`, in order. Small files go to the workers in batches."""
        results: list[FileEntry | Future[list[FileEntry]]] = []
        pending: deque[Future[list[FileEntry]]] = deque()
        batch: list[SourceFile] = []
        batch_bytes = 0

        def submit() -> None:
            nonlocal batch, batch_bytes
            if batch:
                future = self.pool.submit(self._small_files, batch)
                results.append(future)
                pending.append(future)
                batch, batch_bytes = [], 0
            while len(pending) > min(self.workers * 2, _BATCHES_AHEAD):
                self._report(sum(entry.size for entry in pending.popleft().result()))

        for source in files:
            if source.size <= WINDOW:
                batch.append(source)
                batch_bytes += source.size
                if len(batch) >= _BATCH_FILES or batch_bytes >= WINDOW:
                    submit()
            else:
                submit()
                results.append(self._large_file(source))
        submit()
        while pending:
            self._report(sum(entry.size for entry in pending.popleft().result()))
        self._report(0, flush=True)
        entries: list[FileEntry] = []
        for item in results:
            if isinstance(item, Future):
                entries.extend(item.result())
            else:
                entries.append(item)
        return entries

    # --- the pieces --------------------------------------------------------------------------

    def _store_chunk(self, data: memoryview | bytes) -> str:
        digest = content_digest(data)
        self._put(digest, data)
        return digest

    def _put(self, digest: str, data: memoryview | bytes) -> None:
        self._put_many([(digest, data)])

    def _put_many(self, items: list[tuple[str, memoryview | bytes]]) -> None:
        """Store the chunks this snapshot has not stored yet, in one batch."""
        fresh = []
        with self.lock:
            for digest, data in items:
                if digest not in self.seen:
                    self.seen.add(digest)
                    if digest not in self.present:
                        fresh.append((digest, data))
        if not fresh:
            return
        written = self.blobs.put_many(fresh)
        new = [len(data) for (_, data), stored in zip(fresh, written, strict=True) if stored]
        with self.lock:
            self.bytes_new += sum(new)
            self.chunks_new += len(new)

    def _chunker(self) -> FastCDC:
        """One cutter per thread (pyfastcdc does not promise that a cutter can be shared)."""
        chunker: FastCDC | None = getattr(self._local, "chunker", None)
        if chunker is None:
            chunker = self._local.chunker = new_chunker()
        return chunker

    def _small_files(self, sources: list[SourceFile]) -> list[FileEntry]:
        entries: list[FileEntry] = []
        chunks: list[tuple[str, memoryview | bytes]] = []
        for source in sources:
            entry, pieces = self._small_file(source)
            entries.append(entry)
            chunks.extend(pieces)
        self._put_many(chunks)
        return entries

    def _small_file(self, source: SourceFile) -> tuple[FileEntry, list[tuple[str, memoryview | bytes]]]:
        """The file's entry and its chunks (digest, bytes), not stored yet."""
        data = _read_whole(source)
        chunker = self._chunker()
        spans = chunk_spans(data, chunker) if len(data) > chunker.min_size else [(0, len(data))]
        if len(spans) == 1 and data:
            digest = content_digest(data)  # one chunk: the file digest is the chunk digest
            return FileEntry(source.path, len(data), digest, (digest,)), [(digest, data)]
        view = memoryview(data)
        pieces: list[tuple[str, memoryview | bytes]] = [
            (content_digest(view[start:end]), view[start:end]) for start, end in spans if end > start
        ]
        chunks = tuple(digest for digest, _ in pieces)
        return FileEntry(source.path, len(data), content_digest(view), chunks), pieces

    def _large_file(self, source: SourceFile) -> FileEntry:
        if not self._buffers:
            self._buffers = [bytearray(WINDOW) for _ in range(_BUFFERS)]
        hasher = blake3.blake3()
        chunk_futures: list[Future[str]] = []
        by_buffer: dict[int, list[Future[Any]]] = {}

        def wait_for(slot: int) -> None:
            for future in by_buffer.pop(slot, []):
                future.result()

        size = 0
        with _open(source) as handle:

            def read_into(view: memoryview) -> int | None:
                try:
                    return handle.readinto(view)
                except OSError as exc:
                    raise UnreadableSource(
                        source.path, exc.strerror or str(exc), "make it readable"
                    ) from None

            before = os.fstat(handle.fileno())
            for window in windows(read_into, self._buffers, chunker=self._chunker(), before_fill=wait_for):
                used: list[Future[Any]] = [
                    self.file_hasher.submit(hasher.update, window.view[: window.consumed])
                ]
                for start, end in window.spans:
                    future = self.pool.submit(self._store_chunk, window.view[start:end])
                    chunk_futures.append(future)
                    used.append(future)
                by_buffer[window.buffer] = used
                size += window.consumed
                self._report(window.consumed)
            for slot in list(by_buffer):
                wait_for(slot)
            _unchanged(source, before, os.fstat(handle.fileno()), size)
        chunks = tuple(future.result() for future in chunk_futures)
        return FileEntry(source.path, size, str(hasher.hexdigest()), chunks)

    def _report(self, n: int, *, flush: bool = False) -> None:
        self.bytes_read += n
        self._unreported += n
        if self.progress is not None and self._unreported and (flush or self._unreported >= _PROGRESS_STEP):
            self.progress(self._unreported)
            self._unreported = 0


def _open_fd(source: SourceFile) -> int:
    """Open a source file, without following a symbolic link that was not expected."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    if not source.via_link:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(source.location, flags)
    except FileNotFoundError:
        raise UnreadableSource(source.path, "it disappeared", "snapshot again") from None
    except OSError as exc:
        raise UnreadableSource(source.path, exc.strerror or str(exc), "make it readable") from None


@contextmanager
def _open(source: SourceFile) -> Iterator[io.FileIO]:
    with open(_open_fd(source), "rb", buffering=0) as handle:
        yield handle


def _read_whole(source: SourceFile) -> bytes:
    """The content of a small file, checked not to have changed while it was read."""
    fd = _open_fd(source)
    try:
        before = os.fstat(fd)
        parts = [os.read(fd, before.st_size + 1)]
        while parts[-1]:
            parts.append(os.read(fd, max(before.st_size, 65536)))
        after = os.fstat(fd)
    except OSError as exc:
        raise UnreadableSource(source.path, exc.strerror or str(exc), "make it readable") from None
    finally:
        os.close(fd)
    data = parts[0] if len(parts) == 2 else b"".join(parts)
    _unchanged(source, before, after, len(data))
    return data


def _unchanged(source: SourceFile, before: os.stat_result, after: os.stat_result, read: int) -> None:
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or read != after.st_size:
        raise UnreadableSource(
            source.path,
            "it changed while it was being read",
            "snapshot again once it is no longer being written",
        )

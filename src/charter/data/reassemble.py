"""Checking an uploaded snapshot: is this manifest exactly what `snapshot` would record?

A remote client cuts and hashes its files itself and uploads only the chunks the server lacks,
then names the result with a manifest. The server trusts none of it: `verify_upload` reads every
chunk back from the blob store, checks it against its digest, reassembles each file, checks the
file's size and digest, and runs charter's own chunker over the reassembled bytes to check that the
chunk boundaries are the ones `snapshot` would have cut. A manifest that passes is byte for byte the
manifest an embedded `dataset add` of the same files would have written, so the version's digest,
deduplication and "unchanged content records nothing" behave the same in both modes.

With `into`, the reassembled files are also written under that folder (the server needs tables on
disk to read their schema, profile and row fingerprints); otherwise nothing is written.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import blake3

from charter.data.checkout import CorruptBlob
from charter.data.chunking import MAX_CHUNK, WINDOW, content_digest, new_chunker, windows
from charter.data.manifest import FileEntry, Manifest
from charter.errors import InvalidInput, NotFound
from charter.storage.blobs import BlobStore

_AHEAD = 16  # chunks fetched and checked ahead of the one being reassembled


class UploadIncomplete(InvalidInput):
    def __init__(self, digest: str, path: str) -> None:
        super().__init__(
            f"chunk {digest} of {path} is not on the server; upload the chunks the server lacks "
            "(ask `POST /api/v1/blobs/missing`, then `PUT /api/v1/blobs/DIGEST` each) and commit again",
            digest=digest,
            path=path,
        )


class InconsistentUpload(InvalidInput):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"the uploaded manifest does not describe {path}: {reason}; upload the file again with "
            "charter's client",
            path=path,
            reason=reason,
        )


class NonCanonicalChunks(InvalidInput):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path} is not cut into chunks the way charter cuts files (FastCDC, 64 KiB to "
            f"{MAX_CHUNK // 1024} KiB, about 256 KiB on average), so its manifest differs from the one an "
            "embedded add would record; upload it with a charter client of the same chunking format",
            path=path,
        )


def manifest_from_json(document: object) -> Manifest:
    """A manifest sent as a JSON value (not as its canonical bytes), checked like one read from the
    store: `InvalidManifest` unless it is a valid manifest."""
    import json

    try:
        encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        encoded = "null"
    return Manifest.from_bytes(encoded.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class VerifiedUpload:
    """What the check read: every distinct chunk with its size, and the bytes reassembled."""

    chunk_sizes: dict[str, int]
    bytes_read: int


def verify_upload(
    blobs: BlobStore, manifest: Manifest, *, into: Path | None = None, threads: int | None = None
) -> VerifiedUpload:
    """Check `manifest` against the blob store (see the module docstring); raises
    `UploadIncomplete`, `CorruptBlob`, `InconsistentUpload` or `NonCanonicalChunks`."""
    sizes: dict[str, int] = {}
    total = 0
    buffers = [bytearray(WINDOW), bytearray(WINDOW)]
    workers = threads or max(1, min(8, blobs.parallelism))
    with ThreadPoolExecutor(workers, thread_name_prefix="charter-reassemble") as pool:
        for entry in manifest.files:
            out = None if into is None else _create(into, entry.path)
            try:
                total += _verify_file(pool, blobs, entry, buffers, sizes, out)
            finally:
                if out is not None:
                    out.close()
    return VerifiedUpload(sizes, total)


def _create(root: Path, path: str) -> BinaryIO:
    target = root.joinpath(*path.split("/"))  # manifest paths are validated relative POSIX paths
    target.parent.mkdir(parents=True, exist_ok=True)
    return open(target, "xb")  # closed by the caller


class _Reader:
    """The file `entry` as a stream reassembled from its chunks, recording each chunk's length."""

    def __init__(self, chunks: Iterator[bytes], out: BinaryIO | None) -> None:
        self.chunks = chunks
        self.out = out
        self.hasher = blake3.blake3()
        self.lengths: list[int] = []
        self.size = 0
        self._current = memoryview(b"")

    def read_into(self, view: memoryview) -> int:
        if not self._current:
            data = next(self.chunks, None)
            if data is None:
                return 0
            self.lengths.append(len(data))
            self.size += len(data)
            self.hasher.update(data)
            if self.out is not None:
                self.out.write(data)
            self._current = memoryview(data)
        n = min(len(view), len(self._current))
        view[:n] = self._current[:n]
        self._current = self._current[n:]
        return n


def _verify_file(
    pool: ThreadPoolExecutor,
    blobs: BlobStore,
    entry: FileEntry,
    buffers: list[bytearray],
    sizes: dict[str, int],
    out: BinaryIO | None,
) -> int:
    reader = _Reader(_chunks(pool, blobs, entry, sizes), out)
    cuts: list[int] = []
    for window in windows(reader.read_into, buffers, chunker=new_chunker()):
        cuts.extend(end - start for start, end in window.spans)
    if reader.size != entry.size or reader.hasher.hexdigest() != entry.digest:
        raise InconsistentUpload(
            entry.path,
            f"its chunks reassemble to {reader.size} bytes with digest {reader.hasher.hexdigest()}, not "
            f"{entry.size} bytes with digest {entry.digest}",
        )
    if cuts != reader.lengths:
        raise NonCanonicalChunks(entry.path)
    return reader.size


def _fetch(blobs: BlobStore, digest: str, path: str) -> bytes:
    try:
        with blobs.open(digest) as handle:
            data = handle.read(MAX_CHUNK + 1)
    except NotFound:
        raise UploadIncomplete(digest, path) from None
    if len(data) > MAX_CHUNK:
        raise InconsistentUpload(path, f"chunk {digest} is larger than a chunk can be ({MAX_CHUNK} bytes)")
    actual = content_digest(data)
    if actual != digest:
        raise CorruptBlob(digest, f"a chunk of {path}", actual)
    return data


def _chunks(
    pool: ThreadPoolExecutor, blobs: BlobStore, entry: FileEntry, sizes: dict[str, int]
) -> Iterator[bytes]:
    """The chunks of `entry` in order, each fetched and checked a few ahead by the pool."""
    queue: deque[tuple[str, Future[bytes]]] = deque()
    pending = iter(entry.chunks)
    for digest in pending:
        queue.append((digest, pool.submit(_fetch, blobs, digest, entry.path)))
        if len(queue) >= _AHEAD:
            break
    while queue:
        digest, future = queue.popleft()
        data = future.result()
        sizes[digest] = len(data)
        following = next(pending, None)
        if following is not None:
            queue.append((following, pool.submit(_fetch, blobs, following, entry.path)))
        yield data

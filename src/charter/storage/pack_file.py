"""Appending to a new pack file, durably, with as little CPU as the file system allows.

Where the file system supports it (ext4, XFS, …), a pack is written with `O_DIRECT`: objects are
copied into page-aligned buffers of `SPOOL` bytes, and each full buffer is written straight to the
disk by one background thread while the next one fills. The data never passes through the page
cache, so there is no second copy into it, no dirty pages for the kernel to write back later, and
the final `fdatasync` has only metadata left to do: the disk works while the caller hashes. The
last, partial buffer is padded to the alignment, written, and the file truncated to its real size.

Where `O_DIRECT` is refused (tmpfs, some network file systems), at open or — as some FUSE and
network file systems do — only at the first write (probed with one aligned block when the pack is
opened), the file is written through the
page cache with vectored writes and fsynced at the end; the result is the same file.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

Buffer = bytes | bytearray | memoryview

SPOOL = 4 * 1024 * 1024  # bytes per direct write
ALIGN = 4096  # offsets and lengths of direct writes (covers 512-byte and 4 KiB sectors)
_SPOOLS = 3  # buffers per file: one filling, the others being written
IOV_MAX = 1024
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def write_fully(fd: int, data: Buffer, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def write_vector(fd: int, pieces: list[Buffer], offset: int) -> None:
    """Write `pieces` back to back from `offset`, in as few `pwritev` calls as the kernel allows."""
    views = [memoryview(piece).cast("B") for piece in pieces]
    while views:
        written = os.pwritev(fd, views[:IOV_MAX], offset)
        offset += written
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


class PackFile:
    """A new file that bytes are appended to; `finish()` (run on `io`) makes it durable and closes
    it. Appends come from one thread at a time (the pack writer holds its lock)."""

    def __init__(self, path: Path, io: ThreadPoolExecutor, *, direct: bool = True) -> None:
        self.path, self.io = path, io
        self.size = 0  # bytes appended
        self.fd, self.direct = _open(path, direct)
        self._written = 0  # bytes handed to `io` (a multiple of SPOOL)
        self._spool: mmap.mmap | None = None
        self._fill = 0
        self._free: list[mmap.mmap] = []
        self._pending: deque[tuple[mmap.mmap, Future[None]]] = deque()

    def append(self, pieces: list[Buffer]) -> None:
        if not self.direct:
            write_vector(self.fd, pieces, self.size)
            self.size += sum(len(piece) for piece in pieces)
            return
        for piece in pieces:
            view = memoryview(piece).cast("B")
            while view:
                spool = self._spool if self._spool is not None else self._take()
                n = min(len(view), SPOOL - self._fill)
                spool[self._fill : self._fill + n] = view[:n]
                self._fill += n
                self.size += n
                view = view[n:]
                if self._fill == SPOOL:
                    self._send(spool, SPOOL)

    def finish(self) -> None:
        """Write what is left, wait for every write, fdatasync, close. Call on the `io` thread
        (after the writes already queued there) or on any thread once they are done."""
        try:
            if self.direct and self._fill:
                spool = self._spool
                assert spool is not None
                padded = -(-self._fill // ALIGN) * ALIGN
                spool[self._fill : padded] = bytes(padded - self._fill)
                write_fully(self.fd, memoryview(spool)[:padded], self._written)
            for _, future in self._pending:
                future.result()
            if self.direct:
                os.ftruncate(self.fd, self.size)
            os.fdatasync(self.fd)
        finally:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def abandon(self) -> None:
        """Stop: wait for the writes in flight, close, delete the file."""
        for _, future in self._pending:
            with contextlib.suppress(Exception):
                future.result()
        self.close()
        self.path.unlink(missing_ok=True)

    def _send(self, spool: mmap.mmap, length: int) -> None:
        self._pending.append(
            (spool, self.io.submit(write_fully, self.fd, memoryview(spool)[:length], self._written))
        )
        self._written += length
        self._spool, self._fill = None, 0

    def _take(self) -> mmap.mmap:
        """A buffer to fill: a new one while there are fewer than _SPOOLS, else the oldest written."""
        while self._pending and (self._pending[0][1].done() or len(self._pending) >= _SPOOLS):
            spool, future = self._pending.popleft()
            future.result()
            self._free.append(spool)
        self._spool = self._free.pop() if self._free else mmap.mmap(-1, SPOOL)  # page-aligned
        return self._spool


def _open(path: Path, direct: bool) -> tuple[int, bool]:
    flag = getattr(os, "O_DIRECT", 0)
    if direct and flag:
        try:
            fd = os.open(path, _FLAGS | flag, 0o644)
        except OSError:  # EINVAL: the file system does not do direct I/O
            path.unlink(missing_ok=True)
        else:
            if _direct_writes_work(fd):
                return fd, True
            os.close(fd)
            path.unlink(missing_ok=True)
    return os.open(path, _FLAGS, 0o644), False


def _direct_writes_work(fd: int) -> bool:
    """Whether an aligned direct write succeeds: some file systems (FUSE, some network ones) accept
    `O_DIRECT` at open and refuse the writes with EINVAL. One zeroed block at offset 0, which the
    pack's first write covers (or `finish` truncates away)."""
    probe = mmap.mmap(-1, ALIGN)  # page-aligned, zeroed; freed with its last view
    try:
        write_fully(fd, memoryview(probe), 0)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise
    return True

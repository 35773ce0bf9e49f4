"""Content-defined chunking: where a byte stream is cut, and the digest of each piece.

Files are cut with FastCDC (the 2020 variant, `pyfastcdc`) and every piece is named by its
BLAKE3 hex digest. A cut point depends only on the bytes near it, so an edit or an append changes
the chunks around the edit and leaves every other chunk — and its digest — as it was.

The parameters are part of the storage format: changing them changes the digests of new chunks
(old manifests stay valid, because a manifest lists its chunks; only deduplication against older
versions would suffer). They are chosen so that

- a chunk is never larger than 1 MiB (`MAX_CHUNK`): appending N bytes to a file stores at most
  the old tail chunk plus the N new bytes (≤ 1 MiB + N) as new blobs;
- chunks average about 290 KiB (`AVG_CHUNK` is FastCDC's target; normalisation level 2 keeps
  the sizes close to it, so the 1 MiB cap almost never applies): about 3,500 blobs per GiB,
  which keeps per-blob overhead (a file per blob, a digest per chunk in the manifest) small.

Large files are read in windows of `WINDOW` bytes into reused buffers (no memory map: a file
truncated while being read must not crash the process with SIGBUS). A chunk is only cut where at
least `MAX_CHUNK` bytes — or the end of the file — follow its start inside the window, so the cut
points are exactly those of cutting the whole file at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import blake3
from pyfastcdc import FastCDC

KiB = 1024
MiB = 1024 * KiB

MIN_CHUNK = 64 * KiB
AVG_CHUNK = 256 * KiB
MAX_CHUNK = 1 * MiB
NORMALIZATION: Literal[2] = 2
WINDOW = 4 * MiB

Buffer = bytes | bytearray | memoryview


def new_chunker(
    *, min_size: int = MIN_CHUNK, avg_size: int = AVG_CHUNK, max_size: int = MAX_CHUNK
) -> FastCDC:
    """A FastCDC cutter with charter's parameters (tests may pass small ones)."""
    return FastCDC(avg_size, min_size=min_size, max_size=max_size, normalized_chunking=NORMALIZATION)


def content_digest(data: Buffer) -> str:
    """The BLAKE3 hex digest of `data`: the name of a blob, a chunk or a whole file."""
    return str(blake3.blake3(data).hexdigest())


def chunk_spans(data: Buffer, chunker: FastCDC | None = None) -> list[tuple[int, int]]:
    """(start, end) of every chunk of `data`, in order; empty data has no chunks."""
    cutter = chunker or new_chunker()
    return [(chunk.offset, chunk.offset + chunk.length) for chunk in cutter.cut_buf(data)]


@dataclass(frozen=True)
class Window:
    """A stretch of a file held in a buffer, cut into chunks.

    `view[start:end]` for each span is a chunk; `view[:consumed]` is the part of the file these
    chunks cover (the rest of the view is carried over into the next window). `buffer` is the index
    of the reused buffer the view points into: it stays valid until that buffer is refilled.
    """

    index: int
    buffer: int
    view: memoryview
    spans: list[tuple[int, int]]
    consumed: int
    last: bool


ReadInto = Callable[[memoryview], int | None]


def windows(
    read_into: ReadInto,
    buffers: list[bytearray],
    *,
    chunker: FastCDC | None = None,
    before_fill: Callable[[int], None] | None = None,
) -> Iterator[Window]:
    """Read a stream through a ring of equal `buffers` and yield it window by window.

    `read_into(view)` fills `view` and returns the number of bytes read (0 or None at the end), like
    `RawIOBase.readinto`. `before_fill(i)` is called before buffer `i` is refilled, so a caller
    whose workers still use views into it can wait for them. Each buffer must hold at least twice
    the chunker's maximum chunk size.
    """
    cutter = chunker or new_chunker()
    limit = cutter.max_size
    if any(len(buffer) < 2 * limit for buffer in buffers):
        raise ValueError(f"window buffers must hold at least {2 * limit} bytes")
    carry = memoryview(b"")
    index = 0
    last = False
    while not last:
        slot = index % len(buffers)
        if before_fill is not None:
            before_fill(slot)
        view = memoryview(buffers[slot])
        filled = len(carry)
        view[:filled] = carry
        while filled < len(view):
            n = read_into(view[filled:])
            if not n:
                last = True
                break
            filled += n
        data = view[:filled]
        spans: list[tuple[int, int]] = []
        consumed = 0
        for chunk in cutter.cut_buf(data):
            if not last and filled - chunk.offset < limit:
                break
            consumed = chunk.offset + chunk.length
            spans.append((chunk.offset, consumed))
        # With a single buffer the carry would be overwritten while being copied: copy it out.
        carry = data[consumed:] if len(buffers) > 1 else memoryview(bytes(data[consumed:]))
        yield Window(index=index, buffer=slot, view=data, spans=spans, consumed=consumed, last=last)
        index += 1

"""The packs' indexes in memory, compactly: about 100 bytes an object instead of about 330.

A pack's index file holds its entries sorted by digest (`charter.storage.packs`). `PackEntries`
keeps that file's bytes as they are — a numpy array of (digest, offset, length), 48 bytes an
entry — and is the `Mapping` of hex digest → (offset, length) that a `PackInfo` carries.
`Locations` answers "which pack holds this object" for a whole folder from one merged copy of
every pack's entries in digest order, as columns: the raw digests in one bytes object, the pack's
number, offset and length (52 bytes an object), plus a fan-out table over the digests' leading
bits (at most 8 bytes an object). A lookup reads the one or two rows its leading bits point to and
compares the digest in place.

Held as Python dictionaries, the same index took about 330 bytes an object (the hex digest string,
two tuples, the dictionary slots) — 1.3 GB per process for a store of 4 million chunks, a terabyte
at the 256 KiB average chunk — and loading it cost a Python loop over every entry of every pack
each time another process added a pack. Here loading is a few numpy operations (30× faster); a
lookup costs about 2.5× a dictionary's, small beside reading or writing the object
(docs/benchmarks.md, "The packs' index in memory")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

# one entry of an index file: the raw digest as four big-endian 64-bit words (so comparing the
# words in order compares the bytes), then the offset and length, little-endian
ENTRY = np.dtype([("digest", ">u8", (4,)), ("offset", "<u8"), ("length", "<u8")])
_NO_ROWS = np.zeros(0, dtype=ENTRY)


class _Sorted:
    """Sorted digests, found through a fan-out table: a digest's top bits index `fan`, which gives
    the rows that start with them (one or two on average), and those rows are compared in place
    in one bytes object of raw digests (numpy calls would cost several times more per lookup)."""

    __slots__ = ("digests", "fan", "shift")

    def __init__(self, words: np.ndarray) -> None:  # (N, 4) big-endian uint64, rows sorted
        count = len(words)
        self.digests = np.ascontiguousarray(words, dtype=">u8").tobytes()  # the raw digests, in order
        bits = min(32, max(1, count.bit_length()))  # 2^bits buckets
        self.shift = 32 - bits
        tops = (words[:, 0] >> np.uint64(32)).astype(np.uint64)  # each digest's first 4 bytes
        bounds = np.arange(2**bits, dtype=np.uint64) << np.uint64(self.shift)
        fan = np.append(np.searchsorted(tops, bounds), count).astype(np.uint32)
        self.fan = fan.data

    def find(self, digest: str) -> int | None:
        """The row of `digest` (hex), or None (also when it is not a digest)."""
        if len(digest) != 64:
            return None
        try:
            raw = bytes.fromhex(digest)
            bucket = int(digest[:8], 16) >> self.shift
        except ValueError:
            return None
        fan, digests = self.fan, self.digests
        for i in range(fan[bucket], fan[bucket + 1]):
            if digests.startswith(raw, 32 * i):
                return i
        return None


class PackEntries(Mapping[str, tuple[int, int]]):
    """A pack's entries, hex digest → (offset, length), over the index file's sorted array."""

    __slots__ = ("_sorted", "rows")

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self._sorted: _Sorted | None = None  # made on the first lookup

    @classmethod
    def from_buffer(cls, data: bytes, offset: int, count: int) -> PackEntries:
        """The `count` entries of an index file's bytes from `offset` (no copy: the array is a view)."""
        return cls(np.frombuffer(data, dtype=ENTRY, count=count, offset=offset) if count else _NO_ROWS)

    def row_of(self, digest: str) -> int | None:
        """The row holding `digest`, or None."""
        if self._sorted is None:
            self._sorted = _Sorted(self.rows["digest"])
        return self._sorted.find(digest)

    def location(self, row: int) -> tuple[int, int]:
        entry = self.rows[row]
        return int(entry["offset"]), int(entry["length"])

    def __getitem__(self, digest: str) -> tuple[int, int]:
        row = self.row_of(digest)
        if row is None:
            raise KeyError(digest)
        return self.location(row)

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and self.row_of(digest) is not None

    def __iter__(self) -> Iterator[str]:
        raw = np.ascontiguousarray(self.rows["digest"]).tobytes()
        return (raw[i : i + 32].hex() for i in range(0, len(raw), 32))

    def __len__(self) -> int:
        return len(self.rows)

    def items(self) -> Iterator[tuple[str, tuple[int, int]]]:  # type: ignore[override]
        offsets, lengths = self.rows["offset"].tolist(), self.rows["length"].tolist()
        return zip(iter(self), zip(offsets, lengths, strict=True), strict=True)

    def values(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        return zip(self.rows["offset"].tolist(), self.rows["length"].tolist(), strict=True)


class Locations:
    """Which pack holds an object, over a folder's packs. Where several packs hold the same object,
    the first of `packs` in the given order does (the order callers sort by: the pack's name)."""

    __slots__ = ("_length", "_names", "_offset", "_pack", "_sorted")

    def __init__(self, packs: Sequence[tuple[str, PackEntries]]) -> None:
        self._names = [name for name, _ in packs]
        parts = [entries.rows for _, entries in packs]
        rows = np.concatenate(parts) if parts else _NO_ROWS
        pack = np.concatenate(
            [np.full(len(part), n, dtype=np.uint32) for n, part in enumerate(parts)]
            or [np.zeros(0, dtype=np.uint32)]
        )
        # stable: among equal first words, earlier packs stay first (each pack's run is sorted
        # already, so this merges sorted runs)
        order = np.argsort(rows["digest"][:, 0], kind="stable")
        rows = rows[order]
        self._sorted = _Sorted(rows["digest"])
        self._pack = pack[order].data
        self._offset = rows["offset"].astype(np.uint64).data
        self._length = rows["length"].astype(np.uint64).data

    def get(self, digest: str) -> tuple[str, int, int] | None:
        i = self._sorted.find(digest)
        if i is None:
            return None
        return self._names[self._pack[i]], self._offset[i], self._length[i]

    def __len__(self) -> int:
        return len(self._pack)

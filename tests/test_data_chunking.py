"""Content-defined chunking: the pieces reassemble exactly, whichever way the bytes are read."""

from __future__ import annotations

import io

import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.data.chunking import MAX_CHUNK, MIN_CHUNK, chunk_spans, content_digest, new_chunker, windows

SMALL = {"min_size": 64, "avg_size": 256, "max_size": 1024}


def _random(n: int, seed: int = 0) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=20_000))
def test_chunk_boundaries_tile_the_content_exactly(data: bytes) -> None:
    chunker = new_chunker(**SMALL)
    spans = chunk_spans(data, chunker)
    assert b"".join(data[start:end] for start, end in spans) == data
    assert [start for start, _ in spans] == [0, *(end for _, end in spans[:-1])][: len(spans)]
    assert all(end - start <= SMALL["max_size"] for start, end in spans)
    assert all(end - start >= SMALL["min_size"] for start, end in spans[:-1])


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(0, 30_000),
    seed=st.integers(0, 2**32 - 1),
    read_sizes=st.lists(st.integers(1, 5_000), min_size=1, max_size=8),
    buffers=st.integers(1, 3),
)
def test_reading_in_windows_cuts_where_the_whole_buffer_would(
    size: int, seed: int, read_sizes: list[int], buffers: int
) -> None:
    data = _random(size, seed)
    stream = io.BytesIO(data)
    calls = iter(range(10**9))

    def short_reads(view: memoryview) -> int:
        # deliver fewer bytes than asked for, in a varying pattern, like a pipe or a network file
        limit = read_sizes[next(calls) % len(read_sizes)]
        return stream.readinto(view[:limit])

    ring = [bytearray(2 * SMALL["max_size"] + 100) for _ in range(buffers)]
    pieces: list[bytes] = []
    consumed = 0
    for window in windows(short_reads, ring, chunker=new_chunker(**SMALL)):
        pieces.extend(bytes(window.view[start:end]) for start, end in window.spans)
        consumed += window.consumed
    whole = [data[start:end] for start, end in chunk_spans(data, new_chunker(**SMALL))]
    assert pieces == whole
    assert consumed == size


def test_windows_refuse_buffers_smaller_than_two_chunks() -> None:
    import pytest

    with pytest.raises(ValueError, match="at least"):
        next(windows(io.BytesIO(b"x").readinto, [bytearray(100)], chunker=new_chunker(**SMALL)))


def test_the_default_parameters_bound_chunks_by_one_mebibyte() -> None:
    data = _random(5 * MAX_CHUNK)
    spans = chunk_spans(data)
    assert max(end - start for start, end in spans) <= MAX_CHUNK
    assert min(end - start for start, end in spans[:-1]) >= MIN_CHUNK
    assert len(spans) > 5


def test_an_edit_changes_only_the_chunks_around_it() -> None:
    data = bytearray(_random(4 * MAX_CHUNK, seed=1))
    before = {content_digest(data[s:e]) for s, e in chunk_spans(data)}
    data[2 * MAX_CHUNK] ^= 0xFF
    after = [content_digest(data[s:e]) for s, e in chunk_spans(data)]
    assert sum(digest not in before for digest in after) <= 2


def test_content_digest_is_blake3_hex() -> None:
    assert content_digest(b"abc") == blake3.blake3(b"abc").hexdigest()
    assert content_digest(memoryview(b"abc")) == content_digest(bytearray(b"abc"))

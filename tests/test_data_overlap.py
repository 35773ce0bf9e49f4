"""Exact overlap: rows of A found in B, counted with A's multiplicity; files by content digest."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from charter.data.manifest import FileEntry, Manifest
from charter.data.overlap import files_found, rows_found


def fps(*values: int) -> np.ndarray:
    return np.sort(np.array(values, dtype=np.uint64))


def test_rows_are_counted_with_the_multiplicity_of_a() -> None:
    a = fps(1, 1, 1, 2, 3, 5)
    b = fps(1, 3, 3, 4)
    assert rows_found(a, b) == 4  # three 1s and one 3
    assert rows_found(b, a) == 3  # one 1 and two 3s


def test_edges() -> None:
    empty = fps()
    assert rows_found(empty, fps(1)) == 0
    assert rows_found(fps(1), empty) == 0
    assert rows_found(fps(2**64 - 1), fps(2**64 - 1)) == 1
    assert rows_found(fps(2**64 - 1), fps(0)) == 0
    assert rows_found(fps(0, 7), fps(7)) == 1


@given(
    st.lists(st.integers(0, 20), max_size=60),
    st.lists(st.integers(0, 20), max_size=60),
)
def test_rows_found_counts_like_a_set_membership_loop(a: list[int], b: list[int]) -> None:
    expected = sum(1 for x in a if x in set(b))
    assert rows_found(fps(*a), fps(*b)) == expected


def _entry(path: str, digest_char: str) -> FileEntry:
    digest = digest_char * 64
    return FileEntry(path, 1, digest, (digest,))


def test_files_are_matched_by_content_not_by_name() -> None:
    a = Manifest((_entry("a.bin", "1"), _entry("b.bin", "2"), _entry("c.bin", "2"), _entry("d.bin", "3")))
    b = Manifest((_entry("renamed.bin", "2"), _entry("x.bin", "9")))
    assert files_found(a, b) == (2, 4)
    assert files_found(b, a) == (1, 2)

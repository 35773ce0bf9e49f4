"""The fast paths of the MinHash engine give what the general ones give: ASCII word splitting
straight from the bytes versus Arrow's Unicode splitting, matrix versus sort deduplication of
shingles, and the vectorised exact Jaccard versus a set intersection per pair."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.data import minhash

ASCII = st.text(alphabet=st.sampled_from("aB z\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f.,Qq1"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), ASCII), max_size=30))
def test_ascii_words_equal_arrows_unicode_words(texts: list[str | None]) -> None:
    array = pa.array(texts, pa.large_string())
    fast = minhash._ascii_words(array)
    assert fast is not None
    slow = minhash._unicode_words(array)
    assert fast[1].tolist() == slow[1].tolist()
    assert fast[0].tolist() == slow[0].tolist()


def test_non_ascii_texts_take_the_unicode_path() -> None:
    array = pa.array(["Élan vital", "naïve  café"], pa.large_string())
    assert minhash._ascii_words(array) is None
    sets = minhash.shingles(array)
    assert len(sets.of(0)) == 1 and len(sets.of(1)) == 1  # one shingle of all words each


def test_a_sliced_array_with_nulls_splits_like_a_fresh_one() -> None:
    array = pa.array(["x a b c", None, "A b  C d", "", "  ", "a b c"] * 3, pa.large_string()).slice(1, 14)
    fresh = pa.array(array.to_pylist(), pa.large_string())
    got, want = minhash.shingles(array), minhash.shingles(fresh)
    assert got.hashes.tolist() == want.hashes.tolist() and got.offsets.tolist() == want.offsets.tolist()


def test_matrix_and_sort_deduplication_agree(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    per_text = rng.integers(0, 12, 200)
    h = rng.integers(0, 6, int(per_text.sum())).astype(np.uint64) * np.uint64(2**61)  # many repeats
    by_matrix = minhash._sorted_sets(h.copy(), per_text)
    monkeypatch.setattr(minhash, "_MATRIX_WIDTH", 0)
    by_sort = minhash._sorted_sets(h.copy(), per_text)
    assert by_matrix.hashes.tolist() == by_sort.hashes.tolist()
    assert by_matrix.offsets.tolist() == by_sort.offsets.tolist()
    for i in range(len(per_text)):
        start = int(np.sum(per_text[:i]))
        assert by_matrix.of(i).tolist() == sorted(set(h[start : start + per_text[i]].tolist()))


def test_vectorised_jaccard_equals_set_arithmetic() -> None:
    rng = np.random.default_rng(4)
    texts_a = [" ".join(rng.choice(["a", "b", "c", "d", "e", "f"], rng.integers(0, 9))) for _ in range(60)]
    texts_b = [" ".join(rng.choice(["a", "b", "c", "d", "e", "f"], rng.integers(0, 9))) for _ in range(50)]
    sa, sb = minhash.shingles(pa.array(texts_a)), minhash.shingles(pa.array(texts_b))
    pairs = np.array([(i, j) for i in range(60) for j in range(50)], dtype=np.int64)
    scores = minhash.jaccards(sa, sb, pairs, block=700)
    for (i, j), score in zip(pairs.tolist(), scores.tolist(), strict=True):
        assert score == minhash.jaccard(sa.of(i), sb.of(j))

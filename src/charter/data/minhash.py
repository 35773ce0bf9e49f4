"""Near-duplicate texts between two collections: MinHash signatures, LSH banding, exact Jaccard.

- Shingles: a text is lower-cased, split on whitespace into words, and every run of `SHINGLE`
  consecutive words is one shingle (a text with fewer words is one shingle of all its words).
  Words are hashed to 64 bits straight from the Arrow buffers (`charter.data.hashing`), a
  shingle's hash combines its words' hashes, and the set of shingle hashes is the text's set.
- MinHash: `PERMUTATIONS` hash functions h_i(x) = (a_i · x + b_i) mod p with p = 2**61 − 1, over
  the low 32 bits of each shingle hash; the signature of a set S is min over x in S of h_i(x).
  P[signatures agree in one position] = Jaccard(S, T).
- LSH banding: the signature is cut into b bands of r rows; two texts are candidates when any
  band agrees entirely. P[candidate] = 1 − (1 − J**r)**b; `bands_for` picks (b, r) whose
  threshold (1/b)**(1/r) lies below the requested Jaccard threshold, favouring recall.
- Verification: every candidate pair's exact Jaccard |S ∩ T| / |S ∪ T| is computed from the
  shingle sets, and only pairs at or above the threshold are reported: no false positives.

Everything is numpy over whole arrays except the verification, which is one set intersection per
candidate pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from charter.data.hashing import U64, hash_bytes, mix, string_buffers

SHINGLE = 3
PERMUTATIONS = 128
PRIME = np.uint64((1 << 61) - 1)
CHUNK = 4096  # texts whose signatures are computed at once
BUCKET_CAP = 200  # pairs taken from one LSH bucket (boilerplate texts would explode otherwise)
_TAG = np.uint64(0x5BE0CD19137E2179)
_K1 = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Shingles:
    """Sorted unique shingle hashes of each text: hashes[offsets[i]:offsets[i+1]]."""

    hashes: U64
    offsets: npt.NDArray[np.int64]

    def of(self, i: int) -> U64:
        return self.hashes[self.offsets[i] : self.offsets[i + 1]]

    def __len__(self) -> int:
        return len(self.offsets) - 1


def shingles(texts: pa.Array, k: int = SHINGLE) -> Shingles:
    """The shingle sets of texts (nulls and empty texts have none)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    texts = pc.cast(texts, pa.large_string())
    trimmed = pc.utf8_trim_whitespace(pc.utf8_lower(texts))
    trimmed = pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), pa.scalar(None, pa.large_string()), trimmed)
    words = pc.utf8_split_whitespace(trimmed)
    counts = np.asarray(pc.fill_null(pc.list_value_length(words), 0).to_numpy(zero_copy_only=False), np.int64)
    flat = pc.list_flatten(words)
    if len(flat):
        offsets, data = string_buffers(flat)
        word_hash = hash_bytes(data, offsets[:-1] - int(offsets[0]), np.diff(offsets), _TAG)
    else:
        word_hash = np.empty(0, dtype=np.uint64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    # a shingle begins at every word position with k − 1 words after it in the same text,
    # or at the first word of a text with fewer than k words
    n_words = len(word_hash)
    owner = np.repeat(np.arange(len(counts)), counts)
    position = np.arange(n_words) - starts[owner] if n_words else np.empty(0, np.int64)
    span = np.minimum(counts[owner], k) if n_words else np.empty(0, np.int64)
    begins = np.flatnonzero(position + span <= counts[owner]) if n_words else np.empty(0, np.int64)
    h = np.zeros(len(begins), dtype=np.uint64)
    padded = np.concatenate([word_hash, np.zeros(k, dtype=np.uint64)])
    for j in range(k):
        inside = j < span[begins]
        h = h * _K1 + np.where(inside, padded[begins + j], np.uint64(0))
    h = mix(h ^ span[begins].astype(np.uint64))
    text_of = owner[begins]
    order = np.lexsort((h, text_of))
    h, text_of = h[order], text_of[order]
    keep = np.ones(len(h), dtype=bool)
    keep[1:] = (h[1:] != h[:-1]) | (text_of[1:] != text_of[:-1])
    h, text_of = h[keep], text_of[keep]
    per_text = np.bincount(text_of, minlength=len(counts)).astype(np.int64)
    return Shingles(h, np.concatenate([[0], np.cumsum(per_text)]).astype(np.int64))


def _coefficients(n: int, seed: int) -> tuple[U64, U64]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 31, size=n, dtype=np.uint64)
    b = rng.integers(0, 1 << 61, size=n, dtype=np.uint64)
    return a, b


def signatures(sets: Shingles, n: int = PERMUTATIONS, seed: int = 1) -> U64:
    """MinHash signatures, one row per text (texts without shingles get all-max rows)."""
    a, b = _coefficients(n, seed)
    out = np.full((len(sets), n), np.iinfo(np.uint64).max, dtype=np.uint64)
    sizes = np.diff(sets.offsets)
    for lo in range(0, len(sets), CHUNK):
        hi = min(lo + CHUNK, len(sets))
        first, last = int(sets.offsets[lo]), int(sets.offsets[hi])
        if first == last:
            continue
        x = (sets.hashes[first:last] & np.uint64(0xFFFFFFFF))[:, None]
        values = _mod_prime(a[None, :] * x + b[None, :])
        present = np.flatnonzero(sizes[lo:hi])
        starts = sets.offsets[lo:hi][present] - first
        out[lo + present] = np.minimum.reduceat(values, starts, axis=0)
    return out


def _mod_prime(v: U64) -> U64:
    """v mod (2**61 − 1) for v < 2**64 without a division: 2**61 ≡ 1, so v ≡ (v & P) + (v >> 61)."""
    r = (v & PRIME) + (v >> np.uint64(61))
    r -= PRIME * (r >= PRIME).astype(np.uint64)
    return r


def bands_for(threshold: float, n: int = PERMUTATIONS) -> tuple[int, int]:
    """(bands, rows) whose LSH threshold (1/b)**(1/r) is the highest one below threshold − 0.1."""
    best = (n, 1)
    for rows in range(1, n + 1):
        bands = n // rows
        if (1 / bands) ** (1 / rows) <= max(threshold - 0.1, 0.05):
            best = (bands, rows)
    return best


def candidates(sig_a: U64, sig_b: U64, bands: int, rows: int) -> npt.NDArray[np.int64]:
    """Candidate pairs (i in A, j in B) as an (m, 2) array: some band agrees entirely."""
    found = []
    empty_a = sig_a[:, 0] == np.iinfo(np.uint64).max
    empty_b = sig_b[:, 0] == np.iinfo(np.uint64).max
    for band in range(bands):
        cols = slice(band * rows, (band + 1) * rows)
        ka, kb = _band_keys(sig_a[:, cols]), _band_keys(sig_b[:, cols])
        ka[empty_a], kb[empty_b] = 0, 1  # texts without words never match
        oa, ob = np.argsort(ka, kind="stable"), np.argsort(kb, kind="stable")
        sa, sb = ka[oa], kb[ob]
        shared = np.intersect1d(sa, sb, assume_unique=False)
        if not len(shared):
            continue
        a_lo, a_hi = np.searchsorted(sa, shared, "left"), np.searchsorted(sa, shared, "right")
        b_lo, b_hi = np.searchsorted(sb, shared, "left"), np.searchsorted(sb, shared, "right")
        for i0, i1, j0, j1 in zip(a_lo, a_hi, b_lo, b_hi, strict=True):
            ia = oa[i0 : min(i1, i0 + BUCKET_CAP)]
            jb = ob[j0 : min(j1, j0 + BUCKET_CAP)]
            found.append(np.stack(np.meshgrid(ia, jb, indexing="ij"), axis=-1).reshape(-1, 2))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(found).astype(np.int64), axis=0)


def _band_keys(block: U64) -> U64:
    h = np.zeros(len(block), dtype=np.uint64)
    for column in range(block.shape[1]):
        h = mix(h * _K1 + block[:, column])
    return h


def jaccard(x: U64, y: U64) -> float:
    """Exact Jaccard of two sorted unique hash arrays."""
    if len(x) == 0 and len(y) == 0:
        return 0.0
    both = len(np.intersect1d(x, y, assume_unique=True))
    return both / (len(x) + len(y) - both)


@dataclass(frozen=True)
class NearPairs:
    """Verified pairs (i in A, j in B, Jaccard ≥ threshold), and how many candidates were checked."""

    pairs: list[tuple[int, int, float]]
    candidates: int
    bands: int
    rows: int

    def a_rows(self) -> set[int]:
        return {i for i, _, _ in self.pairs}


def near_pairs(a: pa.Array, b: pa.Array, threshold: float, *, n: int = PERMUTATIONS) -> NearPairs:
    """Pairs of texts of A and B whose word-shingle Jaccard is at least `threshold`."""
    sa, sb = shingles(a), shingles(b)
    bands, rows = bands_for(threshold, n)
    cand = candidates(signatures(sa, n), signatures(sb, n), bands, rows)
    verified = []
    for i, j in cand.tolist():
        score = jaccard(sa.of(i), sb.of(j))
        if score >= threshold:
            verified.append((i, j, score))
    return NearPairs(verified, len(cand), bands, rows)


def describe(method_threshold: float) -> dict[str, Any]:
    return {
        "method": "minhash-lsh",
        "shingle_words": SHINGLE,
        "permutations": PERMUTATIONS,
        "threshold": method_threshold,
        "bands_rows": list(bands_for(method_threshold)),
    }

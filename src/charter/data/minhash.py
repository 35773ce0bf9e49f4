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

Everything is numpy over whole arrays, with no Python loop per text or pair:

- all-ASCII texts are split into words straight from their bytes (other texts by Arrow's Unicode
  splitting, which gives the same words); a text's shingles are sorted and deduplicated as one row
  of a padded matrix;
- signatures are computed `SIGNATURE_TEXTS` texts at a time through two reused buffers, the
  texts cut into `CHUNK_TEXTS`-text tasks for a thread pool (numpy releases the GIL);
- candidate pairs come from sorting each band's keys (row numbers packed into their low bits),
  the bands in parallel; verification is vectorised too (`jaccards`).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from charter.data.hashing import U64, hash_bytes, mix, string_buffers
from charter.data.profile import sorted_unique
from charter.data.scan import cores

SHINGLE = 3
PERMUTATIONS = 128
PRIME = np.uint64((1 << 61) - 1)
SIGNATURE_TEXTS = 64  # texts whose signatures are computed at once (their values stay in cache)
CHUNK_TEXTS = 16_384  # texts shingled and signed by one task of the thread pool
BUCKET_CAP = 200  # pairs taken from one LSH bucket (boilerplate texts would explode otherwise)
_TAG = np.uint64(0x5BE0CD19137E2179)
_MATRIX_WIDTH = 256  # texts of at most this many shingles are deduplicated as rows of a matrix
_ASCII_LOWER = np.arange(256, dtype=np.uint8)
_ASCII_LOWER[ord("A") : ord("Z") + 1] += 32
_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True  # what utf8_split_whitespace splits on
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
    words = _ascii_words(texts)
    if words is None:
        words = _unicode_words(texts)
    word_hash, counts = words
    return _shingle_sets(word_hash, counts, k)


def _unicode_words(texts: pa.Array) -> tuple[U64, npt.NDArray[np.int64]]:
    """Hashes of the lower-cased whitespace-separated words of each text, and their count per text."""
    trimmed = pc.utf8_trim_whitespace(pc.utf8_lower(texts))
    trimmed = pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), pa.scalar(None, pa.large_string()), trimmed)
    words = pc.utf8_split_whitespace(trimmed)
    counts = np.asarray(pc.fill_null(pc.list_value_length(words), 0).to_numpy(zero_copy_only=False), np.int64)
    flat = pc.list_flatten(words)
    if not len(flat):
        return np.empty(0, dtype=np.uint64), counts
    offsets, data = string_buffers(flat)
    return hash_bytes(data, offsets[:-1] - int(offsets[0]), np.diff(offsets), _TAG), counts


def _ascii_words(texts: pa.Array) -> tuple[U64, npt.NDArray[np.int64]] | None:
    """`_unicode_words` straight from the bytes when every text is ASCII (else None): a word is a
    run of bytes that are not whitespace (the ASCII whitespace of Arrow's utf8_split_whitespace)."""
    offsets, data = string_buffers(texts)
    if len(data) and int(data.max()) >= 0x80:
        return None
    first = int(offsets[0])
    bounds = offsets - first
    if texts.null_count:  # a null's slot may hold bytes: it has no words
        kept = np.asarray(texts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        lengths = np.where(kept, np.diff(bounds), 0)
    else:
        lengths = np.diff(bounds)
    lower = _ASCII_LOWER[data]
    letter = ~_ASCII_SPACE[lower]
    # a word begins at a letter after a space or at a text's start, and ends before a space or a text's end
    n = len(lower)
    edge = np.zeros(n + 1, dtype=bool)
    edge[bounds] = True
    before = np.ones(n, dtype=bool)
    before[1:] = ~letter[:-1]
    after = np.ones(n, dtype=bool)
    after[:-1] = ~letter[1:]
    begins = np.flatnonzero(letter & (before | edge[:-1]))
    ends = np.flatnonzero(letter & (after | edge[1:])) + 1
    owner = np.searchsorted(bounds, begins, side="right") - 1
    inside = begins < (bounds[owner] + lengths[owner])  # drops the words of nulls
    if not inside.all():
        begins, ends, owner = begins[inside], ends[inside], owner[inside]
    counts = np.bincount(owner, minlength=len(texts)).astype(np.int64)
    if not len(begins):
        return np.empty(0, dtype=np.uint64), counts
    return hash_bytes(lower, begins.astype(np.int64), (ends - begins).astype(np.int64), _TAG), counts


def _shingle_sets(word_hash: U64, counts: npt.NDArray[np.int64], k: int) -> Shingles:
    """The sorted unique shingle hashes of each text, from its words' hashes."""
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
    per_text = np.bincount(owner[begins], minlength=len(counts)).astype(np.int64)
    return _sorted_sets(h, per_text)


def _sorted_sets(h: U64, per_text: npt.NDArray[np.int64]) -> Shingles:
    """Sort and deduplicate each text's run of h (runs in text order, per_text long): as rows of a
    padded matrix when the runs are short, by one lexicographic sort otherwise."""
    width = int(per_text.max(initial=0))
    if width <= _MATRIX_WIDTH:
        width = max(width, 1)
        rows = len(per_text)
        matrix = np.full((rows, width), np.iinfo(np.uint64).max, dtype=np.uint64)
        column = np.arange(len(h)) - np.repeat(np.cumsum(per_text) - per_text, per_text)
        matrix[np.repeat(np.arange(rows), per_text), column] = h
        matrix.sort(axis=1)  # the padding (the largest value) stays behind each text's own values
        keep = np.arange(width)[None, :] < per_text[:, None]
        keep[:, 1:] &= matrix[:, 1:] != matrix[:, :-1]
        unique = matrix[keep]
        kept = keep.sum(axis=1).astype(np.int64)
    else:
        text_of = np.repeat(np.arange(len(per_text)), per_text)
        order = np.lexsort((h, text_of))
        h, text_of = h[order], text_of[order]
        keep1 = np.ones(len(h), dtype=bool)
        keep1[1:] = (h[1:] != h[:-1]) | (text_of[1:] != text_of[:-1])
        unique = h[keep1]
        kept = np.bincount(text_of[keep1], minlength=len(per_text)).astype(np.int64)
    return Shingles(unique, np.concatenate([[0], np.cumsum(kept)]).astype(np.int64))


def _coefficients(n: int, seed: int) -> tuple[U64, U64]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 31, size=n, dtype=np.uint64)
    b = rng.integers(0, 1 << 61, size=n, dtype=np.uint64)
    return a, b


def signatures(sets: Shingles, n: int = PERMUTATIONS, seed: int = 1) -> U64:
    """MinHash signatures, one row per text (texts without shingles get all-max rows)."""
    a, b = _coefficients(n, seed)
    out = np.full((len(sets), n), np.iinfo(np.uint64).max, dtype=np.uint64)
    for lo in range(0, len(sets), SIGNATURE_TEXTS):
        hi = min(lo + SIGNATURE_TEXTS, len(sets))
        _signature_block(sets, lo, hi, a, b, out[lo:hi])
    return out


def _signature_block(sets: Shingles, lo: int, hi: int, a: U64, b: U64, out: U64) -> None:
    """Signatures of texts lo..hi into out (rows of texts without shingles are left as they are)."""
    first, last = int(sets.offsets[lo]), int(sets.offsets[hi])
    if first == last:
        return
    x = (sets.hashes[first:last] & np.uint64(0xFFFFFFFF))[:, None]
    values = np.multiply(x, a[None, :])  # a < 2**31, x < 2**32: no overflow, a·x + b < 2**63
    values += b[None, :]
    folded = _mod_prime(values)
    sizes = np.diff(sets.offsets[lo : hi + 1])
    present = np.flatnonzero(sizes)
    starts = sets.offsets[lo:hi][present] - first
    out[present] = np.minimum.reduceat(folded, starts, axis=0)


def _mod_prime(v: U64) -> U64:
    """v mod (2**61 − 1) for v < 2**63 without a division: 2**61 ≡ 1, so v ≡ (v & P) + (v >> 61),
    which is below P + 4; values of P and above (4 in 2**61) are brought down by a comparison."""
    r = v & PRIME
    v >>= np.uint64(61)
    r += v
    over = r >= PRIME
    if over.any():
        r[over] -= PRIME
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
    return band_matches(band_keys(sig_a, bands, rows, side=0), band_keys(sig_b, bands, rows, side=1))


def band_keys(sig: U64, bands: int, rows: int, *, side: int) -> U64:
    """One 64-bit key per text and band (texts × bands), hashing the band's signature rows.

    A text without shingles gets the same key in every band: 0 on side 0 (A), all ones on side 1
    (B), so that such texts never match, whatever low bits `band_matches` ignores."""
    h = np.zeros((len(sig), bands), dtype=np.uint64)
    block = sig[:, : bands * rows].reshape(len(sig), bands, rows)
    for column in range(rows):
        h *= _K1
        h += block[:, :, column]
        mix(h)
    h[sig[:, 0] == np.iinfo(np.uint64).max] = np.uint64(0) if side == 0 else np.iinfo(np.uint64).max
    return h


def band_matches(keys_a: U64, keys_b: U64, *, pool: Executor | None = None) -> npt.NDArray[np.int64]:
    """Pairs (i, j), sorted and unique, whose band keys agree in some band (at most BUCKET_CAP
    texts of each side per bucket, the first by row number), as an (m, 2) array.

    Per band, each side's keys are sorted with the row number packed into their low bits (a plain
    sort, much faster than an argsort), so a key is compared on its remaining high bits: two keys
    that differ only in their low bits make an extra candidate, which verification discards."""
    nb = max(len(keys_b), 1)
    bits = max(int(max(len(keys_a), len(keys_b), 1) - 1).bit_length(), 1)

    def one(band: int) -> npt.NDArray[np.int64]:
        return _bucket_pairs(keys_a[:, band], keys_b[:, band], nb, bits)

    bands = keys_a.shape[1]
    found = list(pool.map(one, range(bands))) if pool is not None else [one(band) for band in range(bands)]
    codes = sorted_unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    return np.stack([codes // nb, codes % nb], axis=1).astype(np.int64)


def _packed(keys: U64, bits: int) -> tuple[U64, npt.NDArray[np.int64]]:
    """The keys' high bits (above `bits`) sorted, and the row number of each, ties by row number."""
    low = np.uint64((1 << bits) - 1)
    packed = keys & ~low
    packed |= np.arange(len(keys), dtype=np.uint64)
    packed.sort()
    rows = (packed & low).astype(np.int64)
    packed >>= np.uint64(bits)
    return packed, rows


def _bucket_pairs(ka: U64, kb: U64, nb: int, bits: int) -> npt.NDArray[np.int64]:
    """Codes i · nb + j of the pairs whose keys agree (one band)."""
    sa, oa = _packed(ka, bits)
    sb, ob = _packed(kb, bits)
    ua, a_lo, a_n = _runs(sa)
    ub, b_lo, b_n = _runs(sb)
    at = np.minimum(np.searchsorted(ub, ua), max(len(ub) - 1, 0))
    ia = np.flatnonzero(ub[at] == ua) if len(ub) else np.empty(0, dtype=np.int64)
    if not len(ia):
        return np.empty(0, dtype=np.int64)
    ib = at[ia]
    a_lo, b_lo = a_lo[ia], b_lo[ib]
    a_n, b_n = np.minimum(a_n[ia], BUCKET_CAP), np.minimum(b_n[ib], BUCKET_CAP)
    sizes = a_n * b_n
    group = np.repeat(np.arange(len(sizes)), sizes)
    local = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    i = oa[a_lo[group] + local // b_n[group]]
    j = ob[b_lo[group] + local % b_n[group]]
    codes: npt.NDArray[np.int64] = i * nb + j
    return codes


def _runs(sorted_keys: U64) -> tuple[U64, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct values of a sorted array, where each run starts, and its length."""
    if not len(sorted_keys):
        empty = np.empty(0, dtype=np.int64)
        return sorted_keys, empty, empty
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    lengths = np.diff(np.append(starts, len(sorted_keys)))
    return sorted_keys[starts], starts.astype(np.int64), lengths.astype(np.int64)


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
    from concurrent.futures import ThreadPoolExecutor

    bands, rows = bands_for(threshold, n)
    with ThreadPoolExecutor(max_workers=cores(), thread_name_prefix="charter-minhash") as pool:
        sa, keys_a = _sign(pool, a, n, bands, rows, side=0)
        sb, keys_b = _sign(pool, b, n, bands, rows, side=1)
        cand = band_matches(keys_a, keys_b, pool=pool)
    scores = jaccards(sa, sb, cand)
    keep = np.flatnonzero(scores >= threshold)
    verified = [
        (int(i), int(j), float(score))
        for i, j, score in zip(
            cand[keep, 0].tolist(), cand[keep, 1].tolist(), scores[keep].tolist(), strict=True
        )
    ]
    return NearPairs(verified, len(cand), bands, rows)


def _sign(
    pool: Executor, texts: pa.Array, n: int, bands: int, rows: int, *, side: int
) -> tuple[Shingles, U64]:
    """Shingle sets and band keys of texts, CHUNK_TEXTS texts per task of the pool."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()

    def one(lo: int) -> tuple[Shingles, U64]:
        sets = shingles(texts.slice(lo, CHUNK_TEXTS))
        return sets, band_keys(signatures(sets, n), bands, rows, side=side)

    parts = list(pool.map(one, range(0, len(texts), CHUNK_TEXTS)))
    if not parts:
        return Shingles(np.empty(0, np.uint64), np.zeros(1, np.int64)), np.empty((0, bands), np.uint64)
    offsets = [np.zeros(1, dtype=np.int64)]
    base = 0
    for sets, _ in parts:
        offsets.append(sets.offsets[1:] + base)
        base += int(sets.offsets[-1])
    joined = Shingles(np.concatenate([sets.hashes for sets, _ in parts]), np.concatenate(offsets))
    return joined, np.concatenate([keys for _, keys in parts])


def jaccards(
    sa: Shingles, sb: Shingles, pairs: npt.NDArray[np.int64], block: int = 100_000
) -> npt.NDArray[np.float64]:
    """Exact Jaccard of each pair (i in A, j in B) of shingle sets, `block` pairs at a time."""
    out = np.zeros(len(pairs), dtype=np.float64)
    size_a, size_b = np.diff(sa.offsets), np.diff(sb.offsets)
    for lo in range(0, len(pairs), block):
        i, j = pairs[lo : lo + block, 0], pairs[lo : lo + block, 1]
        na, nb = size_a[i], size_b[j]
        both = _shared_counts(
            sa.hashes[_members(sa.offsets[i], na)], na, sb.hashes[_members(sb.offsets[j], nb)], nb
        )
        union = na + nb - both
        out[lo : lo + len(i)] = np.where(union > 0, both / np.maximum(union, 1), 0.0)
    return out


def _shared_counts(
    values_a: U64, na: npt.NDArray[np.int64], values_b: U64, nb: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """|A_k ∩ B_k| for each k, the unique sets given as consecutive runs of values (na, nb long)."""
    pairs = len(na)
    total = na + nb
    width = int(total.max(initial=0))
    owner = np.concatenate([np.repeat(np.arange(pairs), na), np.repeat(np.arange(pairs), nb)])
    values = np.concatenate([values_a, values_b])
    if width <= 2 * _MATRIX_WIDTH:  # as rows of a matrix: each row sorted, equal neighbours counted
        width = max(width, 1)
        column = np.concatenate(
            [
                np.arange(len(values_a)) - np.repeat(np.cumsum(na) - na, na),
                np.arange(len(values_b)) - np.repeat(np.cumsum(nb) - nb, nb) + np.repeat(na, nb),
            ]
        )
        matrix = np.full((pairs, width), np.iinfo(np.uint64).max, dtype=np.uint64)
        matrix[owner, column] = values
        matrix.sort(axis=1)  # the padding (the largest value) stays behind the row's own values
        same = matrix[:, 1:] == matrix[:, :-1]
        same &= np.arange(1, width)[None, :] < total[:, None]
        counts: npt.NDArray[np.int64] = same.sum(axis=1).astype(np.int64)
        return counts
    order = np.lexsort((values, owner))
    values, owner = values[order], owner[order]
    equal = (values[1:] == values[:-1]) & (owner[1:] == owner[:-1])  # each set is unique: a shared value
    return np.bincount(owner[1:][equal], minlength=pairs).astype(np.int64)


def _members(starts: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Positions starts[k] .. starts[k] + sizes[k] − 1 for every k, concatenated."""
    total = int(sizes.sum())
    first = np.repeat(starts - (np.cumsum(sizes) - sizes), sizes)
    return first + np.arange(total, dtype=np.int64)


def describe(method_threshold: float) -> dict[str, Any]:
    return {
        "method": "minhash-lsh",
        "shingle_words": SHINGLE,
        "permutations": PERMUTATIONS,
        "threshold": method_threshold,
        "bands_rows": list(bands_for(method_threshold)),
    }

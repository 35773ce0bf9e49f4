"""64-bit hashing of values in bulk: numpy arrays and the buffers of Arrow arrays.

`mix` is splitmix64's finaliser (a bijection with good avalanche); `hash_bytes` hashes many byte
strings at once, straight from an Arrow data buffer, without a Python loop per value. The helpers
at the end read the value and offset buffers of Arrow arrays as numpy arrays without copying.
Everything here is part of the fingerprint format: changing a constant changes every fingerprint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

U64 = npt.NDArray[np.uint64]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_POS = np.uint64(0xD6E8FEB86659FD93)  # odd: word-position key
_LEN = np.uint64(0xC13FA9A902A6328F)  # odd: string length multiplier
_SLOT_WORDS = 8  # strings of up to 64 bytes are gathered into a matrix


def mix(z: U64) -> U64:
    """splitmix64's finaliser, in place (a bijection on 64-bit values with good avalanche)."""
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def hash_bytes(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64], tag: np.uint64
) -> U64:
    """Hash the byte strings data[starts[i] : starts[i] + lengths[i]], vectorised.

    Each string is cut into 8-byte little-endian words w_k, the last one zero-padded. The hash is

        mix(sum over k of (mix(w_k ^ P_k) - mix(P_k))  +  length * L  +  tag)   (mod 2**64)

    with a key P_k per word position. A zero word adds nothing, so a string may be padded with
    zero words at will (short strings are processed as a matrix of equal-width rows). The per-word
    mixing is non-linear, so unlike a polynomial hash mod 2**64 there is no known structured family
    of colliding strings; the length and the kind's tag separate "a" from "a\\0" and text from bytes.
    """
    n = len(starts)
    nwords = (lengths + 7) >> 3
    most = int(nwords.max(initial=0))
    padded = np.zeros(len(data) + 8 * _SLOT_WORDS, dtype=np.uint8)
    padded[: len(data)] = data
    if most <= _SLOT_WORDS:
        sums = _short_sums(padded, len(data), starts, lengths, max(most, 1))
    else:
        # strings of up to _SLOT_WORDS words as a matrix, longer ones word by word; the sums are
        # the same either way (zero words add nothing), so the split only changes the speed
        short = nwords <= _SLOT_WORDS
        sums = np.empty(n, dtype=np.uint64)
        if short.any():
            width = max(int(nwords[short].max()), 1)
            sums[short] = _short_sums(padded, len(data), starts[short], lengths[short], width)
        long = np.flatnonzero(~short)
        sums[long] = _long_sums(padded, len(data), starts[long], lengths[long], nwords[long])
    length_key = lengths.astype(np.uint64)
    length_key *= _LEN
    sums += length_key
    sums += tag
    return mix(sums)


def _short_sums(
    padded: npt.NDArray[np.uint8],
    size: int,
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    width: int,
) -> U64:
    """Word sums of strings of at most `width` words: one gather of `width` words per string."""
    n = len(starts)
    rows = np.ndarray((size + 1,), dtype=f"V{8 * width}", buffer=padded, strides=(1,))
    words = rows[starts].view("<u8").astype(np.uint64)
    remaining = np.repeat(lengths, width) if width > 1 else lengths.copy()
    if width > 1:
        remaining -= np.tile(_BYTE_OFFSETS[:width], n)
    np.clip(remaining, 0, 8, out=remaining)
    words &= _BYTE_MASKS[remaining]
    words ^= np.tile(_POSITION_KEYS[:width], n) if width > 1 else _POSITION_KEYS[0]
    mix(words)
    sums: U64 = words[0::width].copy()
    for k in range(1, width):
        sums += words[k::width]
    sums -= _MIXED_KEY_SUMS[width]
    return sums


def _long_sums(
    padded: npt.NDArray[np.uint8],
    size: int,
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    nwords: npt.NDArray[np.int64],
) -> U64:
    """Word sums of strings of any length: every word at once, summed per string by a cumulative sum."""
    n = len(starts)
    most = int(nwords.max(initial=0))
    at = np.ndarray((size + 1,), dtype="V8", buffer=padded, strides=(1,))
    ends = np.cumsum(nwords)
    firsts = ends - nwords
    owner = np.repeat(np.arange(n, dtype=np.int64), nwords)
    k = np.arange(int(ends[-1]) if n else 0, dtype=np.int64) - firsts[owner]
    words = at[starts[owner] + 8 * k].view("<u8").astype(np.uint64)
    words &= _BYTE_MASKS[np.clip(lengths[owner] - 8 * k, 0, 8)]
    words ^= _POSITION_KEYS[k] if most <= len(_POSITION_KEYS) else _position_keys(k)
    mix(words)
    running = np.zeros(len(words) + 1, dtype=np.uint64)
    np.cumsum(words, out=running[1:])
    sums: U64 = running[ends] - running[firsts]
    sums -= _MIXED_KEY_SUMS[nwords] if most < len(_MIXED_KEY_SUMS) else _mixed_key_sums(most)[nwords]
    return sums


def _position_keys(k: npt.NDArray[np.int64]) -> U64:
    """The key of word position k (0-based): (k + 1) * an odd constant, mod 2**64."""
    keys = k.astype(np.uint64) + np.uint64(1)
    keys *= _POS
    return keys


def _mixed_key_sums(most: int) -> U64:
    """Entry j: the sum of mix(P_k) for k < j (what j zero words would add), j = 0..most."""
    sums = np.zeros(most + 1, dtype=np.uint64)
    np.cumsum(mix(_position_keys(np.arange(most, dtype=np.int64))), out=sums[1:])
    return sums


# --- Arrow buffers as numpy --------------------------------------------------------------------


def values(array: pa.Array, dtype: Any) -> npt.NDArray[Any]:
    """The values buffer of a primitive array as numpy (slots of nulls hold arbitrary values)."""
    buffer = array.buffers()[1]
    return np.frombuffer(buffer, dtype=dtype, count=len(array) + array.offset)[array.offset :]


def raw_ints(array: pa.Array, dtype: Any) -> npt.NDArray[np.int64]:
    """The values of a primitive integer-backed array as int64, with 0 in the slots of nulls."""
    ints = values(array, dtype).astype(np.int64)
    if array.null_count:
        ints[nulls(array)] = 0
    return ints


def nulls(array: pa.Array) -> npt.NDArray[np.bool_]:
    """True where `array` is null."""
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def string_buffers(array: pa.Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """Offsets (n + 1, absolute) and the data bytes they cover, of a string or binary array."""
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    _, offsets_buffer, data_buffer = array.buffers()[:3]
    raw = np.frombuffer(offsets_buffer, dtype=np.int64 if large else np.int32)
    offsets: npt.NDArray[np.int64] = raw[array.offset : array.offset + len(array) + 1].astype(np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    return offsets, data[int(offsets[0]) : int(offsets[-1])]


# constant tables, built once at import
_BYTE_OFFSETS = np.arange(_SLOT_WORDS, dtype=np.int64) * 8
_BYTE_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [2**64 - 1], dtype=np.uint64)
_POSITION_KEYS = _position_keys(np.arange(4096, dtype=np.int64))
_MIXED_KEY_SUMS = _mixed_key_sums(4096)

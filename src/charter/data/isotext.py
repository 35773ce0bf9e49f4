"""Dates, timestamps and times as canonical ISO-8601 text, built in bulk with numpy.

    date        2024-05-01
    timestamp   2024-05-01T10:30:00.25      UTC; without a zone taken as UTC; no zone suffix
                2024-05-01                  exactly midnight: the date alone
    time        10:30:00.005

Fractions of a second keep their significant digits only (up to nanoseconds). Years 0..9999 are
written with four digits, in numpy; any other year (rare) is written one value at a time with as
many digits as it needs and a leading "-" when negative.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from charter.data.hashing import raw_ints

Text = tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]

PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_TEXT_WIDTH = 29  # YYYY-MM-DDTHH:MM:SS.fffffffff


def iso_text(array: pa.Array) -> Text:
    """(bytes, starts, lengths) of the ISO-8601 text of each value (nulls: arbitrary text)."""
    kind = array.type
    n = len(array)
    chars = np.full((n, _TEXT_WIDTH), ord("0"), dtype=np.uint8)
    if pa.types.is_time(kind):
        per = PER_SECOND[kind.unit]
        raw = raw_ints(array, np.int32 if pa.types.is_time32(kind) else np.int64)
        lengths = _clock(chars, 0, raw // per, (raw % per) * (1_000_000_000 // per))
        return chars.ravel(), np.arange(n, dtype=np.int64) * _TEXT_WIDTH, lengths
    if pa.types.is_date32(kind):
        days = raw_ints(array, np.int32)
        seconds = nanos = None
    elif pa.types.is_date64(kind):
        days = raw_ints(array, np.int64) // 86_400_000
        seconds = nanos = None
    else:
        per = PER_SECOND[kind.unit]
        raw = raw_ints(array, np.int64)
        total = raw // per
        days, seconds = total // 86_400, total % 86_400
        nanos = (raw % per) * (1_000_000_000 // per)
    year, month, day = _civil(days)
    if int(year.min(initial=0)) < 0 or int(year.max(initial=0)) > 9999:
        return _odd_years(year, month, day, seconds, nanos)
    _digits(chars, 0, year, 4)
    chars[:, 4] = chars[:, 7] = ord("-")
    _digits(chars, 5, month, 2)
    _digits(chars, 8, day, 2)
    lengths = np.full(n, 10, dtype=np.int64)
    if seconds is not None and nanos is not None:
        timed = (seconds != 0) | (nanos != 0)  # exactly midnight is the date alone
        chars[:, 10] = ord("T")
        lengths = np.where(timed, 11 + _clock(chars, 11, seconds, nanos), lengths)
    return chars.ravel(), np.arange(n, dtype=np.int64) * _TEXT_WIDTH, lengths


def _civil(days: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
    """(year, month, day) of days since 1970-01-01, proleptic Gregorian (H. Hinnant's algorithm)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def _clock(
    chars: npt.NDArray[np.uint8], at: int, seconds: npt.NDArray[np.int64], nanos: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Write HH:MM:SS[.fraction] at column `at`; return each text's length from `at`."""
    _digits(chars, at, seconds // 3600, 2)
    chars[:, at + 2] = chars[:, at + 5] = ord(":")
    _digits(chars, at + 3, (seconds // 60) % 60, 2)
    _digits(chars, at + 6, seconds % 60, 2)
    chars[:, at + 8] = ord(".")
    _digits(chars, at + 9, nanos, 9)
    trailing = np.zeros(len(nanos), dtype=np.int64)
    for power in range(1, 9):
        trailing += (nanos % 10**power) == 0
    return np.where(nanos == 0, 8, 8 + 1 + 9 - trailing)


def _digits(chars: npt.NDArray[np.uint8], at: int, values: npt.NDArray[np.int64], width: int) -> None:
    for i in range(width):
        chars[:, at + i] = ord("0") + (values // 10 ** (width - 1 - i)) % 10


def _odd_years(
    year: npt.NDArray[np.int64],
    month: npt.NDArray[np.int64],
    day: npt.NDArray[np.int64],
    seconds: npt.NDArray[np.int64] | None,
    nanos: npt.NDArray[np.int64] | None,
) -> Text:
    """Years outside 0..9999 (rare): the same text, built one value at a time."""
    texts = []
    for i in range(len(year)):
        y = int(year[i])
        text = f"{'-' if y < 0 else ''}{abs(y):04d}-{int(month[i]):02d}-{int(day[i]):02d}"
        if seconds is not None and nanos is not None and (seconds[i] or nanos[i]):
            s, f = int(seconds[i]), int(nanos[i])
            text += f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" + (
                f".{f:09d}".rstrip("0") if f else ""
            )
        texts.append(text.encode("ascii"))
    lengths = np.array([len(text) for text in texts], dtype=np.int64)
    starts = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return np.frombuffer(b"".join(texts), dtype=np.uint8), starts, lengths

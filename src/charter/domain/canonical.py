"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme) for hashing.

Keys are sorted by their UTF-16 code units, there is no insignificant white space, strings are
escaped as ECMAScript's JSON.stringify does, and numbers are written in ECMAScript's shortest
form. Integers are written exactly; RFC 8785 only promises interoperability for integers within
±2**53, so values outside that range are refused rather than silently rounded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

_MAX_SAFE_INTEGER = 2**53 - 1
_encode_string = json.JSONEncoder(ensure_ascii=False).encode


class NotCanonicalisable(ValueError):
    pass


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 encoding of a JSON-compatible value."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode("utf-8")


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise NotCanonicalisable(f"integer {value} is outside ±2**53; store it as a string")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, Mapping):
        out.append("{")
        items = sorted(value.items(), key=lambda kv: _utf16_key(kv[0]))
        for i, (key, item) in enumerate(items):
            if not isinstance(key, str):
                raise NotCanonicalisable(f"object keys must be strings, not {type(key).__name__}")
            if i:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise NotCanonicalisable(f"{type(value).__name__} is not a JSON value")


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def _number(x: float) -> str:
    """ECMAScript Number::toString for a finite double."""
    if not math.isfinite(x):
        raise NotCanonicalisable(f"{x} is not a finite number")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr() gives the shortest round-trip digits; re-lay them out the ECMAScript way.
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # n: position of the decimal point relative to the start of the significant digits
    if whole == "0":
        point = exponent - (len(frac) - len(frac.lstrip("0")))
    else:
        point = len(whole) + exponent
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        exp = n - 1
        head = digits[0] + ("." + digits[1:] if k > 1 else "")
        text = f"{head}e{'+' if exp >= 0 else '-'}{abs(exp)}"
    return sign + text

"""Turning the API's JSON back into the result types the service returns.

The remote client asks the server for the field encoding of a result (`charter.wire.to_fields`:
every dataclass field by name, recursively) rather than the public `as_dict()` form, so decoding
is exact and generic: each field is read back by its type hint. Text is parsed for types that have
a `parse` class method (versions). The parity tests check, for every operation they run, that the
decoded result encodes back to exactly what the server sent.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any


class DecodeError(TypeError):
    pass


def decode(tp: Any, data: Any) -> Any:
    """`data` (parsed JSON) as an instance of `tp`."""
    if tp is Any or tp is object or isinstance(tp, typing.TypeVar):
        return data
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return decode(typing.get_args(tp)[0], data)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(tp), data)
    if data is None:
        if tp is type(None):
            return None
        raise DecodeError(f"null where {tp} was expected")
    if origin is typing.Literal:
        return data
    if origin is not None:
        return _generic(origin, typing.get_args(tp), data)
    if isinstance(tp, type):
        return _class(tp, data)
    return data


def _union(members: tuple[Any, ...], data: Any) -> Any:
    if data is None and type(None) in members:
        return None
    candidates = [m for m in members if m is not type(None)]
    # Prefer the member whose JSON form matches: strings to str, numbers to numbers, …
    candidates.sort(key=lambda m: 0 if _matches(m, data) else 1)
    errors = []
    for member in candidates:
        try:
            return decode(member, data)
        except (DecodeError, TypeError, ValueError, KeyError) as exc:
            errors.append(str(exc))
    raise DecodeError(f"{data!r} fits none of {members}: {'; '.join(errors)}")


def _matches(tp: Any, data: Any) -> bool:
    plain = typing.get_origin(tp) or tp
    if isinstance(data, bool):
        return plain is bool
    if isinstance(data, str):
        return plain is str
    if isinstance(data, int | float):
        return plain in (int, float)
    if isinstance(data, list):
        return plain in (list, tuple, Sequence)
    if isinstance(data, dict):
        return dataclasses.is_dataclass(plain) or plain in (dict, Mapping)
    return False


def _generic(origin: Any, args: tuple[Any, ...], data: Any) -> Any:
    if origin in (list, Sequence, typing.Iterable) or origin is frozenset or origin is set:
        item = args[0] if args else Any
        values = [decode(item, v) for v in _list(data)]
        return origin(values) if origin in (frozenset, set) else values
    if origin is tuple:
        values = _list(data)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in values)
        if args and len(args) == len(values):
            return tuple(decode(a, v) for a, v in zip(args, values, strict=True))
        return tuple(values)
    if origin in (dict, Mapping):
        if not isinstance(data, dict):
            raise DecodeError(f"expected an object, got {data!r}")
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        return {decode(key_type, k): decode(value_type, v) for k, v in data.items()}
    if origin is type:
        return data
    return decode(origin, data)


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise DecodeError(f"expected a list, got {data!r}")
    return data


def _class(tp: type, data: Any) -> Any:
    if tp is bool:
        if not isinstance(data, bool):
            raise DecodeError(f"expected true/false, got {data!r}")
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise DecodeError(f"expected a number, got {data!r}")
        return float(data)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise DecodeError(f"expected an integer, got {data!r}")
        return data
    if tp is str:
        if not isinstance(data, str):
            raise DecodeError(f"expected a string, got {data!r}")
        return data
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp is date:
        return date.fromisoformat(data)
    if tp is timedelta:
        return timedelta(seconds=float(data))
    if issubclass(tp, enum.Enum):
        return tp(data)
    parse = getattr(tp, "parse", None)
    if callable(parse) and isinstance(data, str):  # values with a textual form: versions, refs
        return parse(data)
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, data)
    if isinstance(data, tp):
        return data
    constructor: Any = tp
    return constructor(data)


@cache
def _hints(tp: type) -> dict[str, Any]:
    return typing.get_type_hints(tp)


def _dataclass(tp: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise DecodeError(f"expected an object for {tp.__name__}, got {data!r}")
    hints = _hints(tp)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(tp):
        if not field.init:
            continue  # computed by the constructor
        if field.name not in data:
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if required:
                raise DecodeError(f"{tp.__name__}: the field {field.name!r} is missing")
            continue
        values[field.name] = decode(hints.get(field.name, Any), data[field.name])
    instance = tp(**values)
    return instance

"""The JSON form of results, shared by the CLI's `--json`, the REST API and the remote client.

`to_jsonable` turns a result (anything with `as_dict()`, mappings, sequences, datetimes) into the
plain JSON value the API returns and `charter … --json` prints; `charter.client.decode` turns it
back into the result type on the client side.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import Any


def to_jsonable(value: Any) -> Any:
    if hasattr(value, "as_dict"):
        return to_jsonable(value.as_dict())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


FIELDS_MEDIA_TYPE = "application/vnd.charter.fields+json"


def to_fields(value: Any) -> Any:
    """The lossless JSON form of a result for the remote client: every dataclass field by name
    (fields computed at construction, `init=False`, are left to the constructor).

    `as_dict()` is the public, documented form (what `--json` prints); it may flatten, rename or
    summarise. This form mirrors the types instead, so `charter.client.decode` rebuilds the very
    objects the service returned."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_fields(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, enum.Enum):
        return to_fields(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_fields(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_fields(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "as_dict"):
        return to_jsonable(value)
    return value


def dumps(value: Any, *, indent: int | None = None) -> str:
    """The JSON text of a result (NaN and infinities pass through as the CLI has always printed
    them; every other value is standard JSON)."""
    return json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False, sort_keys=False)

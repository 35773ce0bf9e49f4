"""Errors from the server, raised again on the client as the very class the server raised."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from charter.errors import (
    CharterError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Refused,
    StoreUnavailable,
    Unauthenticated,
)

if TYPE_CHECKING:
    import httpx

_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "error", "message"})

_FAMILY_BY_STATUS: dict[int, type[CharterError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: Refused,
    413: InvalidInput,
    422: InvalidInput,
}


def error_from_response(response: httpx.Response) -> CharterError:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "message" not in body:
        text = response.text.strip()[:500] or response.reason_phrase
        body = {"error": "HTTPError", "message": f"the server answered {response.status_code}: {text}"}
    name = str(body.get("error") or "HTTPError")
    details = {k: v for k, v in body.items() if k not in _PROBLEM_MEMBERS}
    cls = _error_class(name, response.status_code)
    error = cls.__new__(cls)
    Exception.__init__(error, body["message"])
    error.message = str(body["message"])
    error.details = details
    return error


def unreachable(url: str, exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"the charter server at {url}", f"{type(exc).__name__}: {exc}")


def _error_class(name: str, status: int) -> type[CharterError]:
    known = _known_errors().get(name)
    if known is not None:
        return known
    family: Any = _FAMILY_BY_STATUS.get(status, StoreUnavailable if status >= 500 else InvalidInput)
    return _named(name, family)


@cache
def _named(name: str, family: Any) -> type[CharterError]:
    """A class of the server's error name in the right family, for errors this client lacks."""
    return type(name, (family,), {"__module__": "charter.client.errors"})


def _known_errors() -> dict[str, type[CharterError]]:
    found: dict[str, type[CharterError]] = {}
    pending: list[type[CharterError]] = [CharterError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.__name__, cls)
        pending.extend(cls.__subclasses__())
    return found

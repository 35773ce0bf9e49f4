"""Errors at the HTTP edge: the one table from error families to statuses, as problem+json.

The body carries the same `error`, `message` and details the CLI prints with `--json`, plus the
RFC 9457 members (`type`, `title`, `status`, `detail`), so a remote CLI re-raises the very error the
embedded one would and prints the same paragraph.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from charter.errors import (
    CharterError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Refused,
    StoreUnavailable,
    Unauthenticated,
)

PROBLEM_JSON = "application/problem+json"

# Checked in order: the first family the error belongs to gives its status.
STATUSES: tuple[tuple[type[CharterError], int], ...] = (
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Refused, 409),
    (StoreUnavailable, 503),
    (InvalidInput, 400),
)

FAMILIES: dict[int, str] = {
    400: "invalid-input",
    401: "unauthenticated",
    403: "permission-denied",
    404: "not-found",
    409: "refused",
    413: "invalid-input",
    503: "unavailable",
}


def status_of(error: CharterError) -> int:
    for family, status in STATUSES:
        if isinstance(error, family):
            return status
    return 400


def problem(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A problem+json response; `body` holds at least `error` and `message`."""
    document = {
        "type": f"https://charter.dev/problems/{FAMILIES.get(status, 'error')}",
        "title": body["error"],
        "status": status,
        "detail": body["message"],
        **body,
    }
    return Response(
        json.dumps(document, ensure_ascii=False, default=str),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def error_response(error: CharterError) -> Response:
    status = status_of(error)
    headers = {"WWW-Authenticate": 'Bearer realm="charter"'} if status == 401 else None
    return problem(status, error.as_dict(), headers)


def invalid_request(message: str, *, status: int = 400, **details: Any) -> Response:
    return problem(status, {"error": "InvalidRequest", "message": message, **details})

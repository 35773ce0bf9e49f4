"""The one table from error families to exit codes (the interface contract)."""

from __future__ import annotations

from charter.errors import CharterError, InvalidInput, NotFound, PermissionDenied, Refused

OK, INVALID, USAGE, NOT_FOUND, REFUSED, DENIED = 0, 1, 2, 3, 4, 5

EXIT_CODES: tuple[tuple[type[CharterError], int], ...] = (
    (InvalidInput, INVALID),
    (NotFound, NOT_FOUND),
    (Refused, REFUSED),
    (PermissionDenied, DENIED),
)


def exit_code(error: CharterError) -> int:
    for family, code in EXIT_CODES:
        if isinstance(error, family):
            return code
    return INVALID

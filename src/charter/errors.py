"""Every error a user can cause, named by meaning.

Subclasses carry fields, not HTTP statuses or exit codes: those are mapped at the edge
(`charter.cli.failures`, later the API) from the five families below. Every message says what was
wrong and what would be accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CharterError(Exception):
    """Root of every error a user can cause."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: Mapping[str, Any] = details

    def as_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **_jsonable(self.details)}


# --- family 1: invalid input -------------------------------------------------------------------


class InvalidInput(CharterError):
    """The request itself is malformed: a bad name, reference, value or file."""


class InvalidName(InvalidInput):
    def __init__(self, kind: str, name: str, reason: str) -> None:
        super().__init__(
            f"{kind} name {name!r} is not valid: {reason}. Names are lower-case slugs "
            "[a-z0-9][a-z0-9._-]* that do not end in -v<digits>",
            kind=kind,
            name=name,
        )


class InvalidReference(InvalidInput):
    def __init__(self, ref: str, expected: str) -> None:
        super().__init__(f"{ref!r} is not a valid reference; expected {expected}", ref=ref, expected=expected)


class InvalidSpec(InvalidInput):
    """A model spec, policy or other document does not have the accepted shape."""


class AlreadyExists(InvalidInput):
    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(f"{what} already exists" + (f"; {hint}" if hint else ""), what=what)


class StoreNotInitialised(InvalidInput):
    def __init__(self, where: str) -> None:
        super().__init__(
            f"no charter store at {where}; run `charter init` first (or set CHARTER_HOME / "
            "CHARTER_DATABASE_URL to an existing store)",
            where=where,
        )


class StoreOutOfDate(InvalidInput):
    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"the store's schema is at revision {current or 'none'} but this charter needs {head}; "
            "run `charter db upgrade`",
            current=current,
            head=head,
        )


# --- family 3: not found ----------------------------------------------------------------------


class NotFound(CharterError):
    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(f"{what} not found" + (f"; {hint}" if hint else ""), what=what)


# --- family 4: refused by a rule, gate or policy ------------------------------------------------


class Refused(CharterError):
    """The request is well formed but a rule, gate or policy does not allow it."""


class VersionRefused(Refused):
    """A new model version breaks the semantic-versioning rules."""


class BumpTooSmall(VersionRefused):
    def __init__(self, ref: str, needed: str, reason: str) -> None:
        super().__init__(
            f"{ref}: {reason}; the next version must be at least {needed}",
            ref=ref,
            needed=needed,
            reason=reason,
        )


class IdenticalSpec(VersionRefused):
    def __init__(self, ref: str, existing: str) -> None:
        super().__init__(
            f"{ref}: the spec is identical to {existing}; change the spec (weights, provider "
            "snapshot, training data, serving parameters, …) or keep using that version",
            ref=ref,
            existing=existing,
        )


class UnpinnedModel(Refused):
    def __init__(self, provider_model: str, reason: str) -> None:
        super().__init__(
            f"provider model {provider_model!r} is not pinned: {reason}. Use a dated snapshot or a "
            "numeric revision (gpt-4o-2024-08-06, claude-sonnet-4-5-20250929, gemini-1.5-pro-002), "
            "or allow a pattern in the `pins` policy",
            provider_model=provider_model,
        )


class GateRefused(Refused):
    """A gate was evaluated and at least one check failed; `report` holds every check."""

    def __init__(self, message: str, report: Mapping[str, Any]) -> None:
        super().__init__(message, report=report)
        self.report = report


class PolicyViolation(Refused):
    pass


class LedgerBroken(Refused):
    def __init__(self, sequence: int, reason: str) -> None:
        super().__init__(
            f"the audit ledger does not verify: event {sequence}: {reason}",
            sequence=sequence,
            reason=reason,
        )


# --- family 5: permission denied --------------------------------------------------------------


class PermissionDenied(CharterError):
    pass


class MissingRole(PermissionDenied):
    def __init__(self, user: str, action: str, roles: tuple[str, ...]) -> None:
        needed = " or ".join(roles)
        super().__init__(
            f"{user} may not {action}: it needs the {needed} role; an admin can grant it with "
            f"`charter user roles {user} --add {roles[0]}`",
            user=user,
            action=action,
            roles=list(roles),
        )


class SeparationOfDuties(PermissionDenied):
    def __init__(self, user: str, reason: str) -> None:
        super().__init__(
            f"{user} may not do this: {reason}. Separation of duties applies to every role, admin "
            "included; another user must do it",
            user=user,
            reason=reason,
        )


class UnknownActor(PermissionDenied):
    def __init__(self, user: str) -> None:
        super().__init__(
            f"user {user!r} is not registered in this store; an admin can add it with "
            f"`charter user add {user} --role viewer` (or set CHARTER_USER to a registered user)",
            user=user,
        )


class UserDisabled(PermissionDenied):
    def __init__(self, user: str) -> None:
        super().__init__(f"user {user!r} is disabled; an admin must enable it again", user=user)


def _jsonable(details: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in details.items():
        out[key] = (
            value if isinstance(value, str | int | float | bool | list | dict | type(None)) else str(value)
        )
    return out

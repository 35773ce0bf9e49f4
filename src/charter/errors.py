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


class PromptFileError(InvalidSpec):
    """Prompt files that cannot be read; `problems` lists each file with what is wrong."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        count = len(problems)
        head = "a prompt file is not valid" if count == 1 else f"{count} prompt files are not valid"
        body = "\n  ".join(f"{path}: {reason}" for path, reason in problems)
        super().__init__(
            f"{head}:\n  {body}\nnothing was synced; fix the file(s) (`charter prompt check DIR` lists every "
            "finding)",
            problems=[{"file": path, "reason": reason} for path, reason in problems],
        )
        self.problems = problems


class PromptVariablesInvalid(InvalidInput):
    """Variables given to a prompt are missing, undeclared or of the wrong type."""


class StoreUnavailable(CharterError):
    """The store (database or server) cannot be reached and no cached answer can stand in."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(
            f"cannot read {what}: the store is unreachable ({reason}) and nothing was cached for it; "
            "check the database or server, or run from a lockfile (`charter prompt lock ENV`)",
            what=what,
            reason=reason,
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


class PromotionRefused(Refused):
    """A prompt environment move breaks the environment order or lacks its evidence."""


class EnvironmentSkipped(PromotionRefused):
    pass


class ValidationMissing(PromotionRefused):
    pass


class NothingToRollBack(PromotionRefused):
    pass


# --- deployment tracks (rollouts) -------------------------------------------------------------


class RolloutRefused(Refused):
    """A rollout action that the rollout's state or its track policy does not allow."""


class InvalidTransition(RolloutRefused):
    def __init__(self, state: str, action: str, accepted: list[str]) -> None:
        options = ", ".join(accepted) if accepted else "none (the rollout has ended)"
        super().__init__(
            f"cannot {action} a rollout that is {state}; actions accepted now: {options}",
            state=state,
            action=action,
            accepted=accepted,
        )


class RolloutActive(RolloutRefused):
    def __init__(self, slot: str, rollout: str, state: str) -> None:
        super().__init__(
            f"slot {slot} already has an active rollout ({rollout}, {state}); a slot has at most one: "
            "let it reach production, or abort or roll it back, before starting another",
            slot=slot,
            rollout=rollout,
            state=state,
        )


class AdvanceRefused(GateRefused):
    """The stage gate has not passed; `report` is the stage verdict with every criterion's evidence."""

    def __init__(self, stage: str, reason: str, report: Mapping[str, Any], hint: str) -> None:
        super().__init__(f"cannot leave stage {stage}: {reason}; {hint}", report)


class ApprovalRequired(RolloutRefused):
    def __init__(self, slot: str, stage: str, reason: str) -> None:
        super().__init__(
            f"stage {stage} sends real traffic to the candidate and {reason}: a reviewer who did not "
            f"start the rollout must approve it first (`charter rollout approve {slot}`)",
            slot=slot,
            stage=stage,
        )


class UnknownChecklistItem(InvalidInput):
    def __init__(self, item: str, accepted: list[str]) -> None:
        options = ", ".join(accepted) if accepted else "none (the track policy has no checklist)"
        super().__init__(
            f"{item!r} is not a checklist item of this rollout's track policy; accepted: {options}",
            item=item,
            accepted=accepted,
        )


class RollbackWindowClosed(RolloutRefused):
    def __init__(self, slot: str, release: str, closed_at: str) -> None:
        super().__init__(
            f"the rollback window of slot {slot} to release {release} closed at {closed_at}; start a "
            "new rollout of that release to go back to it",
            slot=slot,
            release=release,
            closed_at=closed_at,
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


class NotADesignatedReviewer(PermissionDenied):
    def __init__(self, user: str, model: str, reviewers: tuple[str, ...]) -> None:
        super().__init__(
            f"{user} may not sign off versions of {model}: the model has designated reviewers "
            f"({', '.join(reviewers)}) and only they may; an admin can add {user} with "
            f"`charter model reviewers {model} --add {user}`",
            user=user,
            model=model,
            reviewers=list(reviewers),
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


class Unauthenticated(PermissionDenied):
    """An API token that is missing, unknown, expired or revoked (HTTP 401). Never echoes the secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"not authenticated: {reason}; send a valid API token (`Authorization: Bearer chtr_…`), "
            "which an admin creates with `charter token create USER`",
            reason=reason,
        )


def _jsonable(details: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in details.items():
        out[key] = (
            value if isinstance(value, str | int | float | bool | list | dict | type(None)) else str(value)
        )
    return out

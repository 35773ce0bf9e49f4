"""Roles, what each may do, and separation of duties.

Roles add up and none implies another. Every role may read. The table below is the only place
that says which role an action needs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from charter.errors import InvalidInput, MissingRole, SeparationOfDuties


class Role(enum.StrEnum):
    VIEWER = "viewer"
    SERVICE = "service"
    AUTHOR = "author"
    REVIEWER = "reviewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.strip().lower())
        except ValueError:
            accepted = ", ".join(r.value for r in cls)
            raise InvalidInput(f"{text!r} is not a role; accepted: {accepted}", role=text) from None


class Action(enum.StrEnum):
    READ = "read"
    # identities and administration
    MANAGE_USERS = "manage users"
    APPLY_POLICY = "apply policies"
    MANAGE_REVIEWERS = "designate model reviewers"
    SET_PRIMARY_METRICS = "change a model's primary metrics"
    COLLECT_GARBAGE = "collect unreferenced blobs"
    OVERRIDE = "override a gate"
    MANAGE_TOKENS = "create and revoke API tokens"
    MANAGE_WEBHOOKS = "manage webhooks"
    SIGN_CHECKPOINT = "sign ledger checkpoints"
    # authoring
    REGISTER_MODEL = "register model versions"
    RECORD_EVALUATION = "record evaluations"
    ADD_DATASET = "add dataset versions"
    SYNC_PROMPTS = "sync prompts"
    VALIDATE_PROMPT = "run prompt validations"
    CREATE_RELEASE = "create releases"
    PROMOTE_PROMPT_PRE_PRODUCTION = "move prompts to development or staging"
    # review
    SIGN_OFF = "sign off model versions"
    APPROVE_ROLLOUT = "approve rollouts"
    WAIVE_CONTAMINATION = "waive contamination"
    # operations
    PROMOTE_MODEL = "promote models to production"
    PROMOTE_PROMPT_PRODUCTION = "promote prompts to production"
    ROLL_BACK = "roll back"
    MANAGE_SLOTS = "create and bootstrap slots"
    OPERATE_ROLLOUT = "operate rollouts"
    REPORT_INCIDENT = "report incidents"
    # applications
    ROUTE = "route and record transactions"


_ANY = frozenset(Role)

PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.READ: _ANY,
    Action.MANAGE_USERS: frozenset({Role.ADMIN}),
    Action.APPLY_POLICY: frozenset({Role.ADMIN}),
    Action.MANAGE_REVIEWERS: frozenset({Role.ADMIN}),
    Action.SET_PRIMARY_METRICS: frozenset({Role.ADMIN}),
    Action.COLLECT_GARBAGE: frozenset({Role.ADMIN}),
    Action.OVERRIDE: frozenset({Role.ADMIN}),
    Action.MANAGE_TOKENS: frozenset({Role.ADMIN}),
    Action.MANAGE_WEBHOOKS: frozenset({Role.ADMIN}),
    Action.SIGN_CHECKPOINT: frozenset({Role.ADMIN}),
    Action.REGISTER_MODEL: frozenset({Role.AUTHOR}),
    Action.RECORD_EVALUATION: frozenset({Role.AUTHOR}),
    Action.ADD_DATASET: frozenset({Role.AUTHOR}),
    Action.SYNC_PROMPTS: frozenset({Role.AUTHOR}),
    Action.VALIDATE_PROMPT: frozenset({Role.AUTHOR}),
    Action.CREATE_RELEASE: frozenset({Role.AUTHOR}),
    Action.PROMOTE_PROMPT_PRE_PRODUCTION: frozenset({Role.AUTHOR}),
    Action.SIGN_OFF: frozenset({Role.REVIEWER}),
    Action.APPROVE_ROLLOUT: frozenset({Role.REVIEWER}),
    Action.WAIVE_CONTAMINATION: frozenset({Role.REVIEWER}),
    Action.PROMOTE_MODEL: frozenset({Role.OPERATOR}),
    Action.PROMOTE_PROMPT_PRODUCTION: frozenset({Role.OPERATOR}),
    Action.ROLL_BACK: frozenset({Role.OPERATOR}),
    Action.MANAGE_SLOTS: frozenset({Role.OPERATOR}),
    Action.OPERATE_ROLLOUT: frozenset({Role.OPERATOR}),
    Action.REPORT_INCIDENT: frozenset({Role.OPERATOR}),
    Action.ROUTE: frozenset({Role.SERVICE}),
}


def may(roles: Iterable[Role], action: Action) -> bool:
    return bool(PERMISSIONS[action] & set(roles))


def require(user: str, roles: Iterable[Role], action: Action) -> None:
    """Refuse unless one of `roles` grants `action`."""
    if not may(roles, action):
        needed = tuple(sorted(r.value for r in PERMISSIONS[action]))
        raise MissingRole(user, action.value, needed)


def require_different(actor: str, other: str | None, reason: str) -> None:
    """Separation of duties: `actor` must not be `other` (the author, the starter, …)."""
    if other is not None and actor == other:
        raise SeparationOfDuties(actor, reason)

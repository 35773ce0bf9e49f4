"""Versioned, audited policies."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.domain import policy
from charter.domain.canonical import canonical_json
from charter.domain.roles import Action
from charter.errors import InvalidSpec
from charter.service.access import authorize
from charter.storage.store import Tx

if TYPE_CHECKING:
    from charter.service.registry import Registry


@dataclass(frozen=True)
class Policy:
    version: int  # 0: the built-in defaults, nothing applied yet
    document: dict[str, Any]
    digest: str
    created_at: datetime | None
    created_by: str | None

    def section(self, name: str) -> Any:
        return self.document.get(name, policy.DEFAULTS.get(name))

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "digest": self.digest,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "created_by": self.created_by,
            "document": self.document,
        }


def current_policy(tx: Tx, at: datetime | None = None) -> Policy:
    """The policy in force (at an instant, if given); the defaults before any apply."""
    record = tx.policies.current(at)
    if record is None:
        document = policy.defaults()
        return Policy(0, document, _digest(document), None, None)
    return Policy(
        record.version,
        {**policy.defaults(), **record.document},
        record.digest,
        record.created_at,
        record.created_by,
    )


class PolicyService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def apply(self, document: Mapping[str, Any] | str) -> Policy:
        """Apply a policy document (a mapping, or YAML text): its sections replace the current ones."""
        if isinstance(document, str):
            import yaml  # only here: most commands never parse a policy file

            try:
                document = yaml.safe_load(document)
            except yaml.YAMLError as exc:
                raise InvalidSpec(f"the policy file is not valid YAML: {exc}") from None
            if not isinstance(document, Mapping):
                raise InvalidSpec("a policy file must be a YAML mapping of sections")
        with self.registry.store.write() as tx:
            authorize(tx, self.registry.actor, Action.APPLY_POLICY)
            before = current_policy(tx)
            merged = policy.merge(before.document, document)
            digest = _digest(merged)
            if digest == before.digest and before.version > 0:
                return before
            record = tx.policies.add(
                canonical_json(merged).decode(), digest, at=tx.clock.now(), by=self.registry.actor
            )
            tx.ledger.append(
                self.registry.actor,
                "policy.applied",
                "policy",
                {
                    "version": record.version,
                    "digest": digest,
                    "sections": sorted(document),
                    "document": merged,
                },
            )
            return current_policy(tx)

    def show(self, at: datetime | None = None) -> Policy:
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return current_policy(tx, at)

    def history(self) -> list[Policy]:
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return [
                Policy(r.version, {**policy.defaults(), **r.document}, r.digest, r.created_at, r.created_by)
                for r in tx.policies.history()
            ]


def _digest(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()

"""What the rollout use cases return: frozen dataclasses whose `as_dict()` is what `--json` prints
and what the REST API returns (stable keys)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RolloutStep:
    """One transition, as stored: what happened, the rollout after it, and the routing it set."""

    slot: str
    transition: Mapping[str, Any]
    rollout: Mapping[str, Any]
    routing_version: int
    audit_sequence: int
    pre_traffic: Mapping[str, Any] | None = None
    moved: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "transition": dict(self.transition),
            "rollout": dict(self.rollout),
            "routing_version": self.routing_version,
            "audit_sequence": self.audit_sequence,
            "pre_traffic": None if self.pre_traffic is None else dict(self.pre_traffic),
            "moved": list(self.moved),
        }


@dataclass(frozen=True)
class RolloutStatus:
    slot: str
    rollout: Mapping[str, Any]
    verdict: Mapping[str, Any] | None  # the current stage's gate, evaluated now (active rollouts)
    routing: Mapping[str, Any] | None
    rollback_plan: str
    pre_traffic: Mapping[str, Any] | None
    transitions: tuple[Mapping[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "rollout": dict(self.rollout),
            "verdict": None if self.verdict is None else dict(self.verdict),
            "routing": None if self.routing is None else dict(self.routing),
            "rollback_plan": self.rollback_plan,
            "pre_traffic": None if self.pre_traffic is None else dict(self.pre_traffic),
            "transitions": [dict(t) for t in self.transitions],
        }


@dataclass(frozen=True)
class TickItem:
    slot: str
    rollout: str
    status: str
    verdict: str
    reason: str
    action: str | None  # the automatic transition taken, if any
    step: RolloutStep | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "rollout": self.rollout,
            "status": self.status,
            "verdict": self.verdict,
            "reason": self.reason,
            "action": self.action,
            "step": None if self.step is None else self.step.as_dict(),
        }


@dataclass(frozen=True)
class TickReport:
    at: datetime
    items: tuple[TickItem, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "rollouts": [i.as_dict() for i in self.items]}


@dataclass(frozen=True)
class IncidentReport:
    incident: Mapping[str, Any]
    rollback: RolloutStep | None  # a P0 against the candidate rolls it back at once

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident": dict(self.incident),
            "rollback": None if self.rollback is None else self.rollback.as_dict(),
        }

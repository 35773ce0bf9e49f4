"""Slots: deployment targets with one production release, a track policy and at most one active
rollout. `reg.slots`: create, list, show, bootstrap (the first production release), rollback
(to an earlier production release within its rollback window), inputs (sampled production inputs,
for drift).

A slot's track policy is either a named policy of the `tracks` policy section (resolved when a
rollout starts, which pins it) or the slot's own YAML file (pinned when the slot is created).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.domain.refs import check_name
from charter.domain.roles import Action
from charter.domain.rollback_window import check_rollback_window, rollback_deadline
from charter.domain.tracks import TrackPolicy, parse_track_policy, track_policies
from charter.errors import AlreadyExists, InvalidInput, InvalidSpec, NotFound, Refused, RolloutActive
from charter.service.access import authorize
from charter.service.policies import current_policy
from charter.service.production import restore_versions
from charter.service.releases import require_slot, resolve_release
from charter.service.rollout_gate import slot_policy
from charter.storage.slots import PeriodRecord, SlotRecord
from charter.storage.store import Tx

if TYPE_CHECKING:
    from charter.service.registry import Registry


def _register_drift_source() -> None:
    """`charter dataset drift TRAIN@N --against slot:NAME` reads a slot's recorded inputs."""
    from charter.service.datasets import DRIFT_SOURCES
    from charter.service.slot_inputs import slot_inputs

    DRIFT_SOURCES.setdefault("slot:", slot_inputs)


_register_drift_source()


@dataclass(frozen=True)
class Slot:
    name: str
    policy: str
    policy_source: str  # "tracks" (a named policy of the policy section) or "file"
    policy_digest: str | None  # of the policy a rollout would pin now (None: not found)
    production: str | None  # release digest
    production_since: datetime | None
    rollout: Mapping[str, Any] | None  # the active rollout: id, candidate, status, traffic
    routing_version: int
    created_at: datetime
    created_by: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "policy": self.policy,
            "policy_source": self.policy_source,
            "policy_digest": self.policy_digest,
            "production": self.production,
            "production_since": None if self.production_since is None else self.production_since.isoformat(),
            "rollout": None if self.rollout is None else dict(self.rollout),
            "routing_version": self.routing_version,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class ProductionChange:
    """A bootstrap or a slot rollback: the slot's production release before and after."""

    slot: str
    action: str  # bootstrap | rollback
    before: str | None
    after: str
    moved: tuple[str, ...]  # registry pointers moved with it (model alias, prompt environments)
    routing_version: int
    audit_sequence: int
    at: datetime
    actor: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "action": self.action,
            "before": self.before,
            "after": self.after,
            "moved": list(self.moved),
            "routing_version": self.routing_version,
            "audit_sequence": self.audit_sequence,
            "at": self.at.isoformat(),
            "actor": self.actor,
        }


class SlotService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def create(self, name: str, *, policy: str | Mapping[str, Any] | PathLike[str] | None = None) -> Slot:
        """A new slot. `policy`: the name of a track policy in the `tracks` section (default:
        `default`), a YAML file path, or a policy mapping (the slot's own, pinned now)."""
        check_name(name, "slot")
        policy_name, document = policy_argument(policy)
        with self.registry.store.write() as tx:
            authorize(tx, self.registry.actor, Action.MANAGE_SLOTS)
            if tx.slots.slot(name) is not None:
                raise AlreadyExists(f"slot {name!r}", "see it with `charter slot show " + name + "`")
            if document is None:
                policies = track_policies(current_policy(tx).section("tracks"))
                if policy_name not in policies:
                    raise NotFound(
                        f"track policy {policy_name!r}",
                        f"policies in force: {', '.join(sorted(policies))}; give a YAML file, or add the "
                        "policy under `tracks:` with `charter policy apply FILE`",
                    )
            record = tx.slots.create_slot(
                name, policy_name, document, at=tx.clock.now(), by=self.registry.actor
            )
            pinned = slot_policy(tx, record)
            tx.ledger.append(
                self.registry.actor,
                "slot.created",
                record.subject,
                {"policy": policy_name, "policy_source": "file" if document else "tracks",
                 "policy_digest": pinned.digest(), "policy_document": document, "routing_version": 0},
            )  # fmt: skip
            return slot_view(tx, record)

    def list(self) -> builtins.list[Slot]:
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return [slot_view(tx, s) for s in tx.slots.all_slots()]

    def show(self, name: str) -> Slot:
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return slot_view(tx, require_slot(tx, name))

    def bootstrap(self, name: str, *, release: str) -> ProductionChange:
        """Make `release` the first production release of a slot that has never had one (audited).
        Every later release reaches production through a rollout."""
        with self.registry.store.write() as tx:
            authorize(tx, self.registry.actor, Action.MANAGE_SLOTS)
            slot = require_slot(tx, name)
            record = resolve_release(tx, release, slot=name)
            history = tx.slots.periods(slot_id=slot.id)
            if history:
                raise Refused(
                    f"slot {name} already has a production release ({history[-1].release[:12]} since "
                    f"{history[-1].started_at.isoformat()}); bootstrap sets only the first one. Roll a new "
                    f"release out with `charter rollout start {name} --release ID --rollback-plan TEXT`",
                    slot=name,
                )
            version = tx.slots.bump_routing(slot.id)
            event = tx.ledger.append(
                self.registry.actor,
                "slot.bootstrapped",
                slot.subject,
                {"release": record.digest, "production": record.digest, "routing_version": version,
                 "bundle": record.document},
            )  # fmt: skip
            now = tx.clock.now()
            tx.slots.start_period(
                slot.id, record.id, kind="bootstrap", rollout_id=None, at=now, by=self.registry.actor,
                audit_sequence=event.sequence,
            )  # fmt: skip
            actor = self.registry.actor
            result = ProductionChange(
                name, "bootstrap", None, record.digest, (), version, event.sequence, now, actor
            )
        self.registry.routing_changed()
        return result

    def rollback(self, name: str, *, to: str | None = None, reason: str = "") -> ProductionChange:
        """Restore an earlier production release in one step (default: the one before the current),
        within its rollback window — the window of the policy that replaced it, counted from the
        moment it was replaced. Outside the window a new rollout is the way back."""
        with self.registry.store.write() as tx:
            authorize(tx, self.registry.actor, Action.ROLL_BACK)
            slot = require_slot(tx, name)
            current = tx.slots.production(slot.id)
            if current is None:
                raise NotFound(
                    f"a production release of slot {name}", f"bootstrap it: `charter slot bootstrap {name}`"
                )
            active = tx.rollouts.active_rollout(slot.id)
            if active is not None:
                raise RolloutActive(name, str(active.id), str(active.state.get("status")))
            target = _rollback_target(tx, slot, current, to)
            policy = _window_policy(tx, slot, target)
            now = tx.clock.now()
            assert target.ended_at is not None
            check_rollback_window(
                slot=name, release=target.release, promoted_at=target.ended_at, policy=policy, now=now
            )
            version = tx.slots.bump_routing(slot.id)
            event = tx.ledger.append(
                self.registry.actor,
                "slot.rolled_back",
                slot.subject,
                {"from": current.release, "to": target.release, "production": target.release,
                 "reason": reason, "routing_version": version,
                 "window": {"replaced_at": target.ended_at.isoformat(),
                            "closes_at": rollback_deadline(target.ended_at, policy).isoformat()}},
            )  # fmt: skip
            tx.slots.start_period(
                slot.id, target.release_id, kind="rollback", rollout_id=None, at=now, by=self.registry.actor,
                audit_sequence=event.sequence,
            )  # fmt: skip
            moved = restore_versions(
                tx,
                tx.slots.release_by_id(current.release_id),
                tx.slots.release_by_id(target.release_id),
                actor=self.registry.actor,
                slot=slot,
                reason=reason,
            )
            result = ProductionChange(
                name, "rollback", current.release, target.release, tuple(moved), version, event.sequence, now,
                self.registry.actor,
            )  # fmt: skip
        self.registry.routing_changed()
        return result

    def inputs(
        self, name: str, *, since: datetime | None = None, until: datetime | None = None, limit: int = 100_000
    ) -> builtins.list[dict[str, Any]]:
        """The input features recorded (sampled) with a slot's served transactions, newest first:
        what `dataset drift … --against slot:NAME` compares training data with."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return tx.transactions.inputs(require_slot(tx, name).id, since=since, until=until, limit=limit)


# --- functions over a transaction ----------------------------------------------------------------


def slot_view(tx: Tx, slot: SlotRecord) -> Slot:
    period = tx.slots.production(slot.id)
    active = tx.rollouts.active_rollout(slot.id)
    try:
        digest: str | None = slot_policy(tx, slot).digest()
    except NotFound:
        digest = None
    rollout = None
    if active is not None:
        state = active.state
        rollout = {key: state[key] for key in ("id", "candidate", "phase", "status", "stage", "traffic")}
    return Slot(
        slot.name,
        slot.policy_name,
        "file" if slot.policy_document is not None else "tracks",
        digest,
        None if period is None else period.release,
        None if period is None else period.started_at,
        rollout,
        slot.routing_version,
        slot.created_at,
        slot.created_by,
    )


def _rollback_target(tx: Tx, slot: SlotRecord, current: PeriodRecord, to: str | None) -> PeriodRecord:
    earlier = [
        p
        for p in tx.slots.periods(slot_id=slot.id)
        if p.ended_at is not None and p.release_id != current.release_id
    ]
    if to is not None:
        release = resolve_release(tx, to, slot=slot.name)
        if release.id == current.release_id:
            raise InvalidInput(
                f"release {release.short} is already the production release of slot {slot.name}"
            )
        matching = [p for p in earlier if p.release_id == release.id]
        if not matching:
            raise NotFound(
                f"an earlier production period of release {release.short} on slot {slot.name}",
                "a slot rolls back only to a release it served in production; roll other releases out",
            )
        return matching[-1]
    if not earlier:
        raise NotFound(
            f"an earlier production release of slot {slot.name}",
            f"{current.release[:12]} is the first release it served",
        )
    return earlier[-1]


def _window_policy(tx: Tx, slot: SlotRecord, target: PeriodRecord) -> TrackPolicy:
    """The policy whose rollback window applies: the one pinned by the rollout that replaced the
    target release, else the slot's policy."""
    assert target.ended_at is not None
    successor = next(
        (
            p
            for p in tx.slots.periods(slot_id=slot.id)
            if p.id != target.id and p.started_at >= target.ended_at
        ),
        None,
    )
    if successor is not None and successor.rollout_id is not None:
        record = tx.rollouts.rollout(successor.rollout_id)
        if record is not None:
            return parse_track_policy(record.policy_document)
    return slot_policy(tx, slot)


def policy_argument(
    policy: str | Mapping[str, Any] | PathLike[str] | None,
) -> tuple[str, dict[str, Any] | None]:
    """(policy name, the slot's own policy document or None for a named policy). A YAML file is read
    here, on the caller's side (a remote client calls this too)."""
    if policy is None:
        return "default", None
    if isinstance(policy, Mapping):
        parsed = parse_track_policy(policy)
        return parsed.name, parsed.as_dict()
    path = Path(policy)
    if isinstance(policy, PathLike) or path.is_file() or path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read track policy file {path}: {exc.strerror or exc}") from None
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidSpec(f"track policy file {path} is not valid YAML: {exc}") from None
        parsed = parse_track_policy(document, where=f"track policy file {path}")
        return parsed.name, parsed.as_dict()
    return str(policy), None

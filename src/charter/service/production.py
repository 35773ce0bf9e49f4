"""Changing what a slot serves in production, inside the caller's transaction.

A slot's production release changes three ways — bootstrap (its first), a rollout reaching
production, `charter slot rollback` — and each closes the open production period and opens one
for the new release. Rollouts and rollbacks also move the registries' own production pointers,
through the registries' own repository functions and with their own audit events: the model's
`production` alias (`model.promoted` / `model.rolled_back`) and each prompt's production
environment (`prompt.promoted` / `prompt.rolled_back`). Bootstrap does not: the first release did
not pass the promotion gate, so it does not claim the alias.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from charter.domain.refs import PromptRef
from charter.service.policies import current_policy
from charter.storage.slots import ReleaseRecord, SlotRecord
from charter.storage.store import Tx

ALIAS = "production"


def production_environment(tx: Tx) -> str:
    return str(current_policy(tx).section("environments")["order"][-1])


def promote_versions(
    tx: Tx,
    release: ReleaseRecord,
    *,
    actor: str,
    slot: SlotRecord,
    rollout_id: str,
    gate_report: Mapping[str, Any] | None,
    rollback_plan: str,
    rollback_to_id: int | None,
) -> list[str]:
    """Point the model's `production` alias and each prompt's production environment at the
    release's versions (those that do not hold them already). Returns what moved."""
    now, moved = tx.clock.now(), []
    reason = f"rollout {rollout_id} of release {release.digest[:12]} reached production on slot {slot.name}"
    version = tx.models.version_by_id(release.model_version_id)
    holder = tx.models.alias_target(version.model_id, ALIAS)
    if holder != version.id:
        previous = None if holder is None else tx.models.version_by_id(holder).ref
        event = tx.ledger.append(
            actor,
            "model.promoted",
            version.subject,
            {"alias": ALIAS, "from": previous, "to": version.ref, "via": "rollout", "slot": slot.name,
             "rollout": rollout_id, "release": release.digest, "rollback_plan": rollback_plan},
            {"pre_traffic": dict(gate_report)} if gate_report is not None else None,
        )  # fmt: skip
        tx.models.move_alias(
            version.model_id, ALIAS, version.id, kind="promote", reason=reason, at=now, by=actor,
            audit_sequence=event.sequence,
        )  # fmt: skip
        model_report = (gate_report or {}).get("model") or {}
        if model_report.get("checks"):
            tx.models.add_promotion(
                version.id,
                model_report,
                rollback_plan=rollback_plan,
                rollback_to_id=rollback_to_id,
                at=now,
                by=actor,
            )
        moved.append(f"model:{version.ref}")
    environment = production_environment(tx)
    for version_id in release.prompt_version_ids:
        record = tx.prompts.version_by_id(version_id)
        held = tx.prompts.pointers(record.prompt_id).get(environment)
        if held == record.version:
            continue
        event = tx.ledger.append(
            actor,
            "prompt.promoted",
            record.subject,
            {"environment": environment, "from": None if held is None else f"{record.name}-v{held}",
             "to": record.ref, "reason": reason, "via": "rollout", "slot": slot.name, "rollout": rollout_id},
        )  # fmt: skip
        tx.prompts.move_pointer(
            record.prompt_id,
            environment,
            from_version_id=None if held is None else _prompt_version_id(tx, record.name, held),
            to_version_id=record.id,
            kind="promote",
            reason=reason,
            at=now,
            by=actor,
            audit_sequence=event.sequence,
        )
        moved.append(f"prompt:{record.ref}")
    return moved


def restore_versions(
    tx: Tx, current: ReleaseRecord, target: ReleaseRecord, *, actor: str, slot: SlotRecord, reason: str
) -> list[str]:
    """After a slot rollback: move the model alias and prompt production pointers that still name
    the current release's versions back to the target release's versions."""
    now, moved = tx.clock.now(), []
    why = f"slot {slot.name} rolled back to release {target.digest[:12]}" + (f": {reason}" if reason else "")
    version = tx.models.version_by_id(current.model_version_id)
    back = tx.models.version_by_id(target.model_version_id)
    if back.id != version.id and tx.models.alias_target(back.model_id, ALIAS) == version.id:
        event = tx.ledger.append(
            actor,
            "model.rolled_back",
            f"model:{back.name}",
            {"alias": ALIAS, "from": version.ref, "to": back.ref, "reason": why, "via": "slot rollback",
             "slot": slot.name},
        )  # fmt: skip
        tx.models.move_alias(
            back.model_id, ALIAS, back.id, kind="rollback", reason=why, at=now, by=actor,
            audit_sequence=event.sequence,
        )  # fmt: skip
        moved.append(f"model:{back.ref}")
    environment = production_environment(tx)
    targets = {tx.prompts.version_by_id(i).name: i for i in target.prompt_version_ids}
    for version_id in current.prompt_version_ids:
        record = tx.prompts.version_by_id(version_id)
        to_id = targets.get(record.name)
        held = tx.prompts.pointers(record.prompt_id).get(environment)
        if to_id is None or to_id == version_id or held != record.version:
            continue
        to = tx.prompts.version_by_id(to_id)
        event = tx.ledger.append(
            actor,
            "prompt.rolled_back",
            to.subject,
            {"environment": environment, "from": record.ref, "to": to.ref, "reason": why,
             "via": "slot rollback", "slot": slot.name},
        )  # fmt: skip
        tx.prompts.move_pointer(
            record.prompt_id,
            environment,
            from_version_id=record.id,
            to_version_id=to.id,
            kind="rollback",
            reason=why,
            at=now,
            by=actor,
            audit_sequence=event.sequence,
        )
        moved.append(f"prompt:{to.ref}")
    return moved


def record_metrics(
    tx: Tx,
    release: ReleaseRecord,
    *,
    slot: SlotRecord,
    rollout_id: str,
    metrics: Mapping[str, Any],
    window: tuple[datetime, datetime],
) -> None:
    """Store what the rollout observed on the model version and every prompt version it promoted."""
    now = tx.clock.now()
    targets = [(release.model_version_id, None)] + [(None, v) for v in release.prompt_version_ids]
    for model_version_id, prompt_version_id in targets:
        tx.rollouts.add_production_metrics(
            rollout_id=rollout_id,
            slot_id=slot.id,
            release_id=release.id,
            model_version_id=model_version_id,
            prompt_version_id=prompt_version_id,
            metrics=metrics,
            window=window,
            at=now,
        )


def _prompt_version_id(tx: Tx, name: str, number: int) -> int:
    found = tx.prompts.resolve(PromptRef(name, version=number))
    assert found is not None
    return found.id

"""The facts of a slot's evidence pack: its production release with what it pins, every rollout
with its gates, approvals and checklist, incidents, production periods and releases — cut off at
an instant like the rest of the pack (see `charter.service.report_facts`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from charter.domain.refs import parse_model_ref, parse_prompt_ref
from charter.service.models import resolve_version
from charter.service.prompt_results import Validation
from charter.service.prompts import resolve_version as resolve_prompt
from charter.service.provenance import slot_state
from charter.service.releases import release_view, require_slot
from charter.service.report_facts import Related, dataset_facts, existed, iso, upto
from charter.storage.rollouts import RolloutRecord
from charter.storage.store import Tx


def slot_facts(tx: Tx, name: str, cutoff: datetime | None) -> tuple[dict[str, Any], Related]:
    slot = require_slot(tx, name)
    existed(slot.created_at, cutoff, f"slot {name}", "created")
    state = slot_state(tx, name, cutoff or tx.clock.now()).as_dict()
    records = [r for r in tx.slots.releases_of(slot.id) if upto(r.created_at, cutoff)]
    releases = [release_view(tx, r) for r in records]
    production = state["production"]
    facts = {
        "inventory": {
            "kind": "slot",
            "ref": name,
            "created_at": slot.created_at.isoformat(),
            "created_by": slot.created_by,
            "track_policy": _policy_text(state["policy"]),
        },
        "state": state,
        "production": None if production is None else _release_chain(tx, production, cutoff),
        "periods": [
            {
                "release": p.release,
                "kind": p.kind,
                "rollout": p.rollout_id,
                "from": p.started_at.isoformat(),
                "to": iso(p.ended_at) if p.ended_at is not None and upto(p.ended_at, cutoff) else None,
                "by": p.started_by,
                "audit_sequence": p.audit_sequence,
            }
            for p in tx.slots.periods(slot_id=slot.id)
            if upto(p.started_at, cutoff)
        ],
        "releases": [r.as_dict() for r in releases],
        "rollouts": [
            _rollout(tx, r, cutoff) for r in tx.rollouts.rollouts_of(slot.id) if upto(r.started_at, cutoff)
        ],
        "incidents": [
            {
                "id": i.id,
                "release": i.release,
                "rollout": i.rollout_id,
                "severity": i.severity,
                "summary": i.summary,
                "at": i.at.isoformat(),
                "reported_by": i.reported_by,
                "audit_sequence": i.audit_sequence,
            }
            for i in tx.rollouts.incidents_of(slot.id)
            if upto(i.at, cutoff)
        ],
    }
    related = Related()
    related.add(slot.subject, "this slot")
    for record, release in zip(records, releases, strict=True):
        related.add(f"model:{release.model}", "a model version of its releases")
        for ref in tx.models.version_by_id(record.model_version_id).spec.training.datasets:
            related.add(f"dataset:{ref}", "training data of its model versions")
        for prompt in release.prompts:
            related.add(f"prompt:{prompt}", "a prompt version of its releases")
        if release.retrieval_index is not None:
            related.add(f"dataset:{release.retrieval_index}", "a retrieval index of its releases")
    return facts, related


def _policy_text(policy: Mapping[str, Any] | None) -> str | None:
    if policy is None:
        return None
    where = "its own file" if policy.get("source") == "file" else "the tracks policy section"
    return f"{policy.get('name')} (from {where}; digest {policy.get('digest') or 'unknown'})"


def _release_chain(tx: Tx, release: Mapping[str, Any], cutoff: datetime | None) -> dict[str, Any]:
    """The production release with what it pins: the model version's evidence, the prompt versions'
    latest validations (both as they stood at `cutoff`)."""
    version = resolve_version(tx, parse_model_ref(release["model"]))
    signoffs = [
        {"by": s.created_by, "at": s.created_at.isoformat(), "note": s.note}
        for s in tx.models.signoffs(version.id)
        if upto(s.created_at, cutoff)
    ]
    prompts = []
    for ref in release["prompts"]:
        record = resolve_prompt(tx, parse_prompt_ref(ref))
        checks = [v for v in tx.prompts.validations([record.id]) if upto(v.created_at, cutoff)]
        latest = None if not checks else Validation.of(checks[-1]).summary()
        prompts.append(
            {"ref": record.ref, "content_hash": record.content_hash, "model": record.content.get("model"),
             "source": dict(record.source), "latest_validation": latest}
        )  # fmt: skip
    return {
        **dict(release),
        "model_version": {
            "ref": version.ref,
            "spec_digest": version.spec_digest,
            "registered_by": version.created_by,
            "registered_at": version.created_at.isoformat(),
            "training_datasets": [dataset_facts(tx, ref) for ref in version.spec.training.datasets],
            "signoffs": signoffs,
        },
        "prompt_versions": prompts,
    }


def _rollout(tx: Tx, record: RolloutRecord, cutoff: datetime | None) -> dict[str, Any]:
    steps = [t for t in tx.rollouts.transitions(record.id) if upto(t.at, cutoff)]
    transitions: list[dict[str, Any]] = [
        {"revision": t.revision, "action": t.action, "from": t.from_status, "to": t.to_status,
         "stage": t.stage, "traffic": t.traffic, "at": t.at.isoformat(), "actor": t.actor,
         "audit_sequence": t.audit_sequence, "reason": t.evidence.get("reason"),
         "override": t.evidence.get("override"), "item": t.evidence.get("item"),
         "verdict": t.evidence.get("verdict")}
        for t in steps
    ]  # fmt: skip
    pre_traffic = next((t.evidence["pre_traffic"] for t in steps if t.evidence.get("pre_traffic")), None)
    if pre_traffic is None and cutoff is None:
        pre_traffic = record.gate_report
    candidate = tx.slots.release_by_id(record.candidate_id)
    baseline = tx.slots.release_by_id(record.baseline_id)
    state = record.state
    return {
        "id": record.id,
        "candidate": candidate.digest,
        "candidate_model": tx.models.version_by_id(candidate.model_version_id).ref,
        "baseline": baseline.digest,
        "policy": state.get("policy"),
        "policy_digest": state.get("policy_digest"),
        "stages": list(record.policy_document.get("stages", [])),
        "started_at": record.started_at.isoformat(),
        "started_by": record.started_by,
        "rollback_plan": record.rollback_plan,
        "status_at_time": transitions[-1]["to"] if transitions else None,
        "ended_at": iso(record.ended_at) if upto(record.ended_at, cutoff) else None,
        "approval_required": state.get("approval_required"),
        "approvals": [{"by": t["actor"], "at": t["at"]} for t in transitions if t["action"] == "approve"],
        "checklist": [
            {"item": t["item"], "by": t["actor"], "at": t["at"]}
            for t in transitions
            if t["action"] == "check"
        ],
        "overrides": [
            {**t["override"], "at": t["at"], "stage": t["from"]} for t in transitions if t["override"]
        ],
        "pre_traffic": pre_traffic,
        "transitions": transitions,
    }

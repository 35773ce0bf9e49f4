"""The facts of an evidence pack, read in one transaction and cut off at an instant.

Each `*_facts` function returns plain JSON values (what `charter report --json` prints and what
the HTML is rendered from) and the audit subjects the pack's change log is read from. With a
`cutoff`, only what existed at that instant is kept: records are filtered by their own
timestamps, pointers (aliases, environments, a slot's state) are folded from their histories up to
it. Descriptions and tags are mutable metadata outside the versions: they are shown as they are
now, and said to be. A slot's facts are in `charter.service.report_slot`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from charter.domain import promotion as gate
from charter.domain.refs import ModelRef, PromptRef, parse_dataset_ref, parse_model_ref
from charter.domain.semver import Version
from charter.errors import NotFound
from charter.service.model_results import AliasMove, Evaluation, view
from charter.service.models import promotion_report, resolve_version
from charter.service.prompt_results import EnvMove, Validation
from charter.service.prompts import resolve_version as resolve_prompt
from charter.service.provenance import model_production_periods
from charter.storage.models import EvaluationRecord, ModelVersionRecord
from charter.storage.prompts import PromptVersionRecord
from charter.storage.store import Tx
from charter.storage.waivers import WaiverRepo

FAILURES_SHOWN = 5  # failed rows of a validation copied into a pack (the count is always exact)
ALIAS_ACTIONS = ("model.promoted", "model.rolled_back")
POINTER_ACTIONS = ("prompt.promoted", "prompt.rolled_back")


@dataclass
class Related:
    """Where the change log comes from: exact subjects, and subject prefixes limited to actions."""

    subjects: dict[str, str] = field(default_factory=dict)  # subject → relation
    prefixes: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)

    def add(self, subject: str, relation: str) -> None:
        self.subjects.setdefault(subject, relation)


def upto(when: datetime | str | None, cutoff: datetime | None) -> bool:
    """Whether something stamped `when` existed at `cutoff` (no cutoff: everything)."""
    if cutoff is None or when is None:
        return True
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    return moment <= cutoff


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def existed(created: datetime, cutoff: datetime | None, what: str, verb: str) -> None:
    if not upto(created, cutoff):
        assert cutoff is not None
        raise NotFound(
            f"{what} at {cutoff.isoformat()}", f"it was {verb} at {created.isoformat()}; ask for a later time"
        )


# --- models ----------------------------------------------------------------------------------------


def resolve_model_at(tx: Tx, ref: ModelRef, cutoff: datetime | None) -> ModelVersionRecord:
    """The version a model reference named at `cutoff` (an alias is folded from its moves)."""
    if cutoff is None or ref.version is not None:
        record = resolve_version(tx, ref)
        existed(record.created_at, cutoff, f"model version {record.ref}", "registered")
        return record
    model = tx.models.model(ref.name)
    if model is None:
        raise NotFound(f"model {ref.name!r}", "list models with `charter model list`")
    if ref.alias is not None:
        moves = [m for m in tx.models.alias_moves(model.id, ref.alias) if upto(m.at, cutoff)]
        if not moves or moves[-1].to_version is None:
            raise NotFound(f"alias {ref} at {cutoff.isoformat()}", f"see `charter model history {ref.name}`")
        return resolve_version(tx, ModelRef(ref.name, version=Version.parse(moves[-1].to_version)))
    versions = [v for v in tx.models.versions(model.id) if upto(v.created_at, cutoff)]
    if not versions:
        raise NotFound(f"a version of model {ref.name} at {cutoff.isoformat()}", "ask for a later time")
    return versions[-1]


def model_facts(
    tx: Tx, record: ModelVersionRecord, cutoff: datetime | None
) -> tuple[dict[str, Any], Related]:
    model = tx.models.model(record.name)
    assert model is not None
    training = [dataset_facts(tx, ref) for ref in record.spec.training.datasets]
    evaluations = [
        _evaluation(tx, e, record.spec.training.datasets, cutoff)
        for e in tx.models.evaluations(record.id)
        if upto(e.created_at, cutoff)
    ]
    moves = [view(AliasMove, m) for m in tx.models.alias_moves(model.id) if upto(m.at, cutoff)]
    aliases: dict[str, str | None] = {}
    for move in moves:
        aliases[move.alias] = move.to_version
    promotions = [
        {"at": p.created_at.isoformat(), "by": p.created_by, "rollback_plan": p.rollback_plan,
         "rollback_to": p.rollback_to, "report": p.report}
        for p in tx.models.promotions(record.id)
        if upto(p.created_at, cutoff)
    ]  # fmt: skip
    periods = []
    for period in model_production_periods(tx, record.name):
        if period["version"] == str(record.version) and upto(period["from"], cutoff):
            ended = period["to"] if period["to"] is not None and upto(period["to"], cutoff) else None
            periods.append({**period, "to": ended})
    facts = {
        "inventory": {
            "kind": "model version",
            "ref": record.ref,
            "model": record.name,
            "version": str(record.version),
            "spec_digest": record.spec_digest,
            "registered_at": record.created_at.isoformat(),
            "registered_by": record.created_by,
            "description": record.description,
            "tags": list(record.tags),
            "model_created_at": model.created_at.isoformat(),
            "model_created_by": model.created_by,
            "primary_metrics": dict(model.primary_metrics),
            "designated_reviewers": list(tx.models.reviewers(model.id)),
            "aliases_holding_it": sorted(a for a, v in aliases.items() if v == str(record.version)),
        },
        "spec": record.spec.canonical(),
        "training_datasets": training,
        "evaluations": evaluations,
        "signoffs": [
            {"by": s.created_by, "at": s.created_at.isoformat(), "note": s.note}
            for s in tx.models.signoffs(record.id)
            if upto(s.created_at, cutoff)
        ],
        "promotions": promotions,
        "gate_now": _gate_now(tx, record, model.id) if cutoff is None and not promotions else None,
        "aliases": aliases,
        "alias_history": [m.as_dict() for m in moves],
        "production_periods": periods,
        "production_metrics": [
            m
            for m in tx.rollouts.production_metrics(model_version_id=record.id)
            if upto(m["recorded_at"], cutoff)
        ],
    }
    related = Related()
    related.add(record.subject, "this version")
    related.add(f"model:{record.name}", "the model")
    related.prefixes.append((f"model:{record.name}@", ALIAS_ACTIONS, "the model's aliases"))
    for ref in record.spec.training.datasets:
        related.add(f"dataset:{ref}", "training data")
    for evaluation in evaluations:
        related.add(f"dataset:{evaluation['dataset']}", "evaluation data")
    return facts, related


def _gate_now(tx: Tx, record: ModelVersionRecord, model_id: int) -> dict[str, Any] | None:
    """The promotion gate as a dry run would evaluate it now (no rollback plan given)."""
    holder = tx.models.alias_target(model_id, "production")
    champion = None if holder is None else tx.models.version_by_id(holder)
    if champion is not None and champion.id == record.id:
        return None
    report = promotion_report(tx, record, champion=champion, rollback_plan="", rollback_to=champion)
    return report.as_dict()


def _evaluation(
    tx: Tx, record: EvaluationRecord, training: Iterable[str], cutoff: datetime | None
) -> dict[str, Any]:
    waivers = [
        {"id": w.id, "by": w.created_by, "at": w.created_at.isoformat(), "reason": w.reason}
        for w in WaiverRepo(tx.conn).for_evaluation(record.id)
        if upto(w.created_at, cutoff)
    ]
    facts = view(Evaluation, record).facts()
    exact = {
        ref: int(m.get("overlapping", 0))
        for ref, m in sorted(record.exact_overlap.items())
        if ref in training
    }
    return {
        "id": record.id,
        "dataset": record.dataset,
        "dataset_role": record.dataset_role,
        "held_out": record.dataset_role in gate.HELD_OUT_ROLES,
        "metrics": dict(record.metrics),
        "note": record.note,
        "at": record.created_at.isoformat(),
        "by": record.created_by,
        "exact_overlap": {ref: dict(m) for ref, m in sorted(record.exact_overlap.items())},
        "exact_rows_shared": sum(exact.values()),
        "near_duplicates": gate.near_duplicate_evidence(facts),
        "near_duplicates_over_limit": gate.near_duplicate_excess(facts, tuple(training)),
        "waivers": waivers,
        "contaminated": sum(exact.values()) > 0,
    }


def dataset_facts(tx: Tx, ref: str) -> dict[str, Any]:
    try:
        record = tx.datasets.get_version(parse_dataset_ref(ref))
    except NotFound:
        return {"ref": ref, "missing": True}
    return {
        "ref": record.ref,
        "digest": record.digest,
        "role": record.role,
        "rows": record.row_count,
        "files": record.file_count,
        "bytes": record.bytes_total,
        "sources": list(record.sources),
        "derived_from": record.derived_from,
        "created_at": record.created_at.isoformat(),
        "created_by": record.created_by,
    }


# --- prompts ---------------------------------------------------------------------------------------


def resolve_prompt_at(tx: Tx, ref: PromptRef, cutoff: datetime | None) -> PromptVersionRecord:
    return resolve_prompt(tx, ref, cutoff)


def prompt_facts(
    tx: Tx, record: PromptVersionRecord, cutoff: datetime | None
) -> tuple[dict[str, Any], Related]:
    prompt = tx.prompts.require_prompt(record.name)
    moves = [EnvMove.of(m) for m in tx.prompts.moves(prompt.id) if upto(m.at, cutoff)]
    holders: dict[str, str] = {}
    for move in moves:
        holders[move.environment] = move.to_ref
    validations = []
    for v in tx.prompts.validations([record.id]):
        if upto(v.created_at, cutoff):
            result = Validation.of(v)
            failures = [dict(f) for f in result.failures[:FAILURES_SHOWN]]
            validations.append({**result.summary(), "failures_shown": failures})
    content = dict(record.content)
    pinned = content.get("model")
    facts = {
        "inventory": {
            "kind": "prompt version",
            "ref": record.ref,
            "prompt": record.name,
            "version": record.version,
            "content_hash": record.content_hash,
            "registered_at": record.created_at.isoformat(),
            "registered_by": record.created_by,
            "description": record.description,
            "tags": list(record.tags),
            "environments_holding_it": sorted(e for e, r in holders.items() if r == record.ref),
        },
        "source": dict(record.source),
        "content": content,
        "model": None if not isinstance(pinned, str) else _pinned_model(tx, pinned),
        "environments": holders,
        "environment_history": [m.as_dict() for m in moves],
        "validations": validations,
        "production_metrics": [
            m
            for m in tx.rollouts.production_metrics(prompt_version_id=record.id)
            if upto(m["recorded_at"], cutoff)
        ],
    }
    related = Related()
    related.add(record.subject, "this version")
    related.add(f"prompt:{record.name}", "the prompt")
    related.prefixes.append((f"prompt:{record.name}-v", POINTER_ACTIONS, "the prompt's environments"))
    for validation in validations:
        related.add(f"dataset:{validation['sample']}", "validation sample")
    if isinstance(pinned, str):
        related.add(f"model:{pinned}", "pinned model version")
    return facts, related


def _pinned_model(tx: Tx, ref: str) -> dict[str, Any]:
    try:
        version = resolve_version(tx, parse_model_ref(ref))
    except NotFound:
        return {"ref": ref, "missing": True}
    return {"ref": version.ref, "spec_digest": version.spec_digest, "registered_by": version.created_by}

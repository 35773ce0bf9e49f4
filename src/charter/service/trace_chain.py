"""What a release pins, with its evidence, shown by `trace` — and the audit subjects it depends on.

The records come from `charter.storage.trace_reads` (one statement with the rest of what a trace
reads). The training datasets are the exact versions the spec names, linked to the model version
when it was registered; one not linked is read by its ref. The tags returned with a chain are what
`charter.service.trace_cache` drops it on.
"""

from __future__ import annotations

from typing import Any

from charter.domain.refs import parse_dataset_ref
from charter.errors import NotFound
from charter.service.prompts import version_view as prompt_view
from charter.service.releases import release_of
from charter.service.trace_cache import CHAINS
from charter.storage.models import EvaluationRecord, ModelVersionRecord, PromotionRecord
from charter.storage.rollouts import RolloutRecord, TransitionRecord
from charter.storage.slots import ReleaseRecord
from charter.storage.store import Tx
from charter.storage.trace_reads import ChainRecords


def release_chain(
    tx: Tx, release: ReleaseRecord, version: ModelVersionRecord, found: ChainRecords
) -> tuple[dict[str, Any], frozenset[str]]:
    """Everything a release pins, with its evidence, and the subjects that answer depends on.
    `version` is the release's model version (only its immutable parts — ref, spec, digest,
    creation — are shown), `found` the release's chain records."""
    records, index_record = found.prompts, found.retrieval_index
    view = release_of(release, version, records, None if index_record is None else index_record.ref)
    tags = {CHAINS, f"model:{version.name}"} | {f"prompt:{r.name}" for r in records}
    training = []
    for ref in version.spec.training.datasets:
        parsed = parse_dataset_ref(ref)
        tags.add(f"dataset:{parsed.name}")
        linked = found.training.get(str(parsed))
        if linked is not None:
            training.append(_dataset(linked))
            continue
        try:  # no link row: read by its ref
            training.append(_dataset(tx.datasets.get_version(parsed)))
        except NotFound:
            training.append({"ref": ref, "missing": True})
    evaluations, signoffs, promotions = found.evaluations, found.signoffs, found.promotions
    model = {
        "ref": version.ref,
        "spec": version.spec.canonical(),
        "spec_digest": version.spec_digest,
        "created_at": version.created_at.isoformat(),
        "created_by": version.created_by,
        "training_datasets": training,
        "evaluations": [_evaluation(e) for e in evaluations],
        "signoffs": [{"by": s.created_by, "at": s.created_at.isoformat(), "note": s.note} for s in signoffs],
        "promotions": [_promotion(p) for p in promotions],
        "production_metrics": found.production_metrics,
    }
    validations = found.validations
    prompts = []
    for record in records:
        validation = validations.get(record.id)
        latest = None
        if validation is not None:
            latest = {
                "sample": validation.sample,
                "pass_rate": validation.pass_rate,
                "sample_size": validation.sample_size,
                "passed": validation.passed,
                "at": validation.created_at.isoformat(),
                "by": validation.created_by,
            }
        prompts.append({**prompt_view(record).as_dict(), "latest_validation": latest})
    index = None
    if index_record is not None:
        tags.add(f"dataset:{index_record.name}")
        index = _dataset(index_record)
    chain = {
        "release": view.as_dict(),
        "model": model,
        "prompts": tuple(prompts),
        "datasets": {"training": training, "retrieval_index": index},
    }
    return chain, frozenset(tags)


def rollout_facts(
    found: tuple[RolloutRecord, list[TransitionRecord]] | None,
) -> tuple[dict[str, Any] | None, frozenset[str] | None]:
    """A rollout and its transitions, tagged with its slot (None, not kept, if there is none)."""
    if found is None:
        return None, None
    record, steps = found
    return {"record": record, "steps": steps}, frozenset({f"slot:{record.slot}"})


def _evaluation(e: EvaluationRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "dataset": e.dataset,
        "dataset_role": e.dataset_role,
        "metrics": e.metrics,
        "exact_overlap": e.exact_overlap,
        "created_at": e.created_at.isoformat(),
        "created_by": e.created_by,
    }


def _promotion(p: PromotionRecord) -> dict[str, Any]:
    return {
        "report": p.report,
        "rollback_plan": p.rollback_plan,
        "rollback_to": p.rollback_to,
        "at": p.created_at.isoformat(),
        "by": p.created_by,
    }


def _dataset(record: Any) -> dict[str, Any]:
    return {
        "ref": record.ref,
        "digest": record.digest,
        "role": record.role,
        "rows": record.row_count,
        "files": record.file_count,
        "bytes": record.bytes_total,
        "created_at": record.created_at.isoformat(),
        "created_by": record.created_by,
    }

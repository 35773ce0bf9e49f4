"""Evaluation integrity beyond exact rows: near-duplicate measurement at `model eval`, and waivers.

`measure_near` runs when an evaluation is recorded: the eval dataset's text columns against each
training dataset's (MinHash/LSH, verified by exact Jaccard; `charter.data.minhash`), with the
`contamination` policy's threshold and maximum ratio at that moment. The measurement is stored in
the evaluation's overlap record, per training dataset, under "near_duplicates".

`waive` records a reviewer's written acceptance of an evaluation's near-duplicate overlap
(separation of duties: never the evaluation's author), audited; the promotion gate's check (a)
then passes on near-duplicates, and shows the waiver. Exact row overlap is never waivable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.domain import promotion as gate
from charter.domain.refs import parse_model_ref
from charter.domain.roles import Action, require_different
from charter.errors import InvalidInput, NotFound
from charter.service.access import authorize
from charter.storage.datasets import DatasetVersionRecord
from charter.storage.models import EvaluationRecord
from charter.storage.waivers import WaiverRepo

if TYPE_CHECKING:
    from charter.service.registry import Registry
    from charter.storage.blobs import BlobStore
    from charter.storage.store import Tx


def measure_near(
    blobs: BlobStore,
    evaluated: DatasetVersionRecord,
    training: DatasetVersionRecord,
    policy: dict[str, Any],
) -> dict[str, Any]:
    """The near-duplicate measurement of `evaluated` against `training` for an evaluation record."""
    from charter.service.dataset_analysis import near_between
    from charter.service.dataset_results import overlap_between

    threshold = float(policy["near_duplicate_threshold"])
    limit = float(policy["max_near_duplicate_ratio"])
    if evaluated.schema is None or training.schema is None:
        return {"measured": False, "note": "not both tables: near-duplicates are measured on text columns"}
    try:
        exact = overlap_between(blobs, evaluated, training)
        near = near_between(blobs, evaluated, training, exact, column=None, threshold=threshold)
    except InvalidInput as exc:
        return {"measured": False, "note": str(exc)}
    if not near.columns:
        return {"measured": False, "note": "no text columns shared with the training dataset"}
    return {
        "measured": True,
        "method": "minhash-lsh",
        "columns": list(near.columns),
        "threshold": threshold,
        "max_ratio": limit,
        "a_rows": near.a_rows,
        "near_rows": near.near_rows,
        "ratio": near.ratio,
        "sample": list(near.sample[:3]),
    }


def waiver_facts(tx: Tx, evaluation_id: int) -> dict[str, Any] | None:
    """The latest waiver of an evaluation's near-duplicate overlap, as gate evidence."""
    found = WaiverRepo(tx.conn).for_evaluation(evaluation_id)
    if not found:
        return None
    w = found[-1]
    return {"id": w.id, "by": w.created_by, "at": w.created_at.isoformat(), "reason": w.reason}


@dataclass(frozen=True)
class ContaminationWaiver:
    id: int
    evaluation: int
    model: str
    dataset: str
    reason: str
    created_at: datetime
    created_by: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "evaluation": self.evaluation,
            "model": self.model,
            "dataset": self.dataset,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def waive(registry: Registry, ref_or_evaluation: str | int, reason: str) -> ContaminationWaiver:
    """Waive the near-duplicate overlap of an evaluation (by id), or of a model version's latest
    evaluation on an eval/holdout dataset (by `name@version`)."""
    actor = registry.actor
    if not reason.strip():
        raise InvalidInput("a contamination waiver needs a written reason (--reason TEXT)")
    with registry.store.write() as tx:
        authorize(tx, actor, Action.WAIVE_CONTAMINATION)
        evaluation = _evaluation(tx, ref_or_evaluation)
        require_different(
            actor,
            evaluation.created_by,
            f"{evaluation.created_by} recorded evaluation {evaluation.id}, and nobody waives "
            "contamination on their own evaluation",
        )
        record = WaiverRepo(tx.conn).add(evaluation.id, reason.strip(), at=tx.clock.now(), by=actor)
        near = {ref: m.get("near_duplicates") for ref, m in evaluation.exact_overlap.items()}
        tx.ledger.append(
            actor,
            "model.contamination_waived",
            f"model:{evaluation.model}",
            {"evaluation": evaluation.id, "dataset": evaluation.dataset, "reason": record.reason},
            {"near_duplicates": near},
        )
        return ContaminationWaiver(
            record.id,
            evaluation.id,
            evaluation.model,
            evaluation.dataset,
            record.reason,
            record.created_at,
            record.created_by,
        )


def _evaluation(tx: Tx, ref_or_evaluation: str | int) -> EvaluationRecord:
    from charter.service.models import resolve_version

    text = str(ref_or_evaluation)
    if text.isdigit():
        import sqlalchemy as sa

        from charter.storage.schema import evaluations

        version_id = tx.conn.execute(
            sa.select(evaluations.c.model_version_id).where(evaluations.c.id == int(text))
        ).scalar()
        if version_id is None:
            raise NotFound(
                f"evaluation {text}", "see a version's evaluations with `charter model show NAME@V`"
            )
        return next(e for e in tx.models.evaluations(int(version_id)) if e.id == int(text))
    version = resolve_version(tx, parse_model_ref(text))
    found = tx.models.latest_evaluation(version.id, roles=gate.HELD_OUT_ROLES)
    if found is None:
        raise NotFound(
            f"an evaluation of {version.ref} on an eval or holdout dataset",
            f"record one with `charter model eval {version.ref} --dataset DATASET@N --metric NAME=VALUE`",
        )
    return found

"""Model registry use cases: register, read, evaluate, sign off, promote, roll back.

Each write is one database transaction: authorise, check the rules (`charter.domain.modelspec`,
`.pins`, `.promotion`), change rows, append the audit event. Reads are served from a per-registry
cache keyed by the ledger head: every state change appends an event, so while the head's sequence
is unchanged a cached result (including the actor's authorisation) is still exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.domain import promotion as gate
from charter.domain.modelspec import (
    FieldChange,
    check_new_version,
    classify,
    parse_primary_metrics,
    parse_spec,
)
from charter.domain.pins import check_pinned
from charter.domain.refs import DatasetRef, ModelRef, check_name, parse_dataset_ref, parse_model_ref
from charter.domain.roles import Action, Role, require_different
from charter.domain.semver import Version
from charter.errors import (
    AlreadyExists,
    GateRefused,
    InvalidInput,
    InvalidSpec,
    NotADesignatedReviewer,
    NotFound,
)
from charter.service.access import authorize
from charter.service.contamination import ContaminationWaiver, measure_near, waiver_facts
from charter.service.contamination import waive as waive_contamination
from charter.service.model_inputs import (
    WEIGHTS_FILE,
    load_spec_document,
    local_weights,
    rollback_target,
    version_argument,
    weights_reference,
)
from charter.service.model_results import (
    AliasMove,
    Evaluation,
    Model,
    ModelVersion,
    Signoff,
    SpecDiff,
    VersionDetails,
    as_fields,
    view,
)
from charter.service.policies import current_policy
from charter.service.readcache import LedgerCache
from charter.storage.datasets import DatasetVersionRecord
from charter.storage.models import EvaluationRecord, ModelRecord, ModelVersionRecord, PromotionRecord
from charter.storage.store import Tx

if TYPE_CHECKING:
    from charter.service.registry import Registry
    from charter.service.reproduce import Reproduction

PRODUCTION = "production"


class ModelService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache = LedgerCache(registry.store, registry.actor)

    @property
    def _actor(self) -> str:
        return self.registry.actor

    # --- registering ------------------------------------------------------------------------

    def register(
        self, name: str, spec: Mapping[str, Any] | str | PathLike[str], *, version: str | None = None
    ) -> ModelVersion:
        """Register a new version of `name` (created on first use) from a spec mapping or YAML file.

        Weights given as a local file path are stored in the blob store; the version is assigned
        (or the requested one checked) by the semantic-versioning rules; provider models must be
        pinned; training datasets must exist at the versions named.
        """
        check_name(name, "model")
        requested = version_argument(version)
        document, base = load_spec_document(spec)
        with self.registry.store.read() as tx:  # refuse early, before storing any weights
            authorize(tx, self._actor, Action.REGISTER_MODEL)
        parsed, extras = parse_spec(self._store_weights(document, base))
        metrics = {k: v.value for k, v in (extras.primary_metrics or {}).items()}
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.REGISTER_MODEL)
            pin = None
            if parsed.provider_model is not None:
                pin = check_pinned(parsed.provider_model, current_policy(tx).section("pins")["allow"])
            manifest = None if parsed.weights is None else parsed.weights.manifest
            if manifest is not None and not self.registry.store.blobs.has(manifest):
                raise InvalidSpec(
                    f"weights.manifest {manifest} is not in the blob store; give the weights as a file "
                    "path and charter stores them"
                )
            now, model = tx.clock.now(), tx.models.model(name)
            if model is not None and extras.primary_metrics is not None and metrics != model.primary_metrics:
                raise InvalidSpec(
                    f"the spec declares primary metrics {metrics} but model {name} has "
                    f"{model.primary_metrics}; they are kept per model: leave them out of the spec, or "
                    f"ask an admin to run `charter model metrics {name} --set METRIC=higher|lower`"
                )
            existing = [] if model is None else [(v.version, v.spec) for v in tx.models.versions(model.id)]
            assigned = check_new_version(existing, parsed, requested, name=name)
            training = [tx.datasets.get_version(parse_dataset_ref(r)) for r in parsed.training.datasets]
            if model is None:
                model = tx.models.create_model(name, metrics, at=now, by=self._actor)
                tx.ledger.append(self._actor, "model.created", f"model:{name}", {"primary_metrics": metrics})
            record = tx.models.insert_version(
                model.id,
                assigned,
                parsed,
                description=extras.description,
                tags=extras.tags,
                at=now,
                by=self._actor,
            )
            tx.models.link_training_datasets(record.id, [d.id for d in training])
            payload = {
                "version": str(assigned),
                "requested": None if requested is None else str(requested),
                "spec": parsed.canonical(),
                "spec_digest": parsed.digest,
                "description": extras.description,
                "tags": list(extras.tags),
                "pin": None if pin is None else pin.as_dict(),
            }
            tx.ledger.append(self._actor, "model.registered", record.subject, payload)
            return _version_view(tx, record)

    def _store_weights(self, document: dict[str, Any], base: Path) -> dict[str, Any]:
        """Weights given as a local file path go into the blob store; the spec gets their digest."""
        path = local_weights(document, base)
        if path is None:
            return document
        from charter.data.snapshot import store_file

        stored = store_file(self.registry.store.blobs, path, name=WEIGHTS_FILE)
        return {**document, "weights": weights_reference(stored.manifest)}

    # --- evaluations and sign-offs ----------------------------------------------------------

    def eval(self, ref: str, *, dataset: str, metrics: Mapping[str, float], note: str = "") -> Evaluation:
        """Record an evaluation of a model version on a dataset version, with the exact row overlap
        between that dataset and each of the version's training datasets."""
        values = gate.check_metric_values(metrics)
        model_ref, dataset_ref = parse_model_ref(ref), parse_dataset_ref(dataset)
        with self.registry.store.read() as tx:
            authorize(tx, self._actor, Action.RECORD_EVALUATION)
            version = _resolve(tx, model_ref)
            evaluated = tx.datasets.get_version(dataset_ref)
            training = [tx.datasets.by_id(i) for i in tx.models.training_dataset_ids(version.id)]
            contamination = dict(current_policy(tx).section("contamination"))
        # Both sides are immutable versions, so the overlap is measured outside the write lock.
        overlap = {t.ref: _overlap(self.registry.store.blobs, evaluated, t) for t in training}
        for t in training:  # near-duplicates of text columns (MinHash/LSH), per the policy
            overlap[t.ref]["near_duplicates"] = measure_near(
                self.registry.store.blobs, evaluated, t, contamination
            )
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.RECORD_EVALUATION)
            now = tx.clock.now()
            record = tx.models.add_evaluation(
                version.id, evaluated.id, values, overlap, note=note, at=now, by=self._actor
            )
            payload = {
                "evaluation": record.id,
                "dataset": evaluated.ref,
                "dataset_role": evaluated.role,
                "metrics": values,
                "note": note,
            }
            near = {ref: m["near_duplicates"] for ref, m in overlap.items()}
            evidence = {"exact_overlap": overlap, "near_duplicates": near}
            tx.ledger.append(self._actor, "model.evaluated", version.subject, payload, evidence)
            return view(Evaluation, record)

    def signoff(self, ref: str, note: str = "") -> Signoff:
        """Sign off a model version: a reviewer who is not its author (admins included) and, when the
        model has designated reviewers, one of them."""
        model_ref = parse_model_ref(ref)
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.SIGN_OFF)
            version = _resolve(tx, model_ref)
            why = (
                f"{version.created_by} registered {version.ref}, and nobody signs off their own model version"
            )
            require_different(self._actor, version.created_by, why)
            designated = tx.models.reviewers(version.model_id)
            if designated and self._actor not in designated:
                raise NotADesignatedReviewer(self._actor, version.name, designated)
            if any(s.created_by == self._actor for s in tx.models.signoffs(version.id)):
                raise AlreadyExists(
                    f"a sign-off of {version.ref} by {self._actor}", "one per reviewer is kept"
                )
            record = tx.models.add_signoff(version.id, note=note, at=tx.clock.now(), by=self._actor)
            tx.ledger.append(self._actor, "model.signed_off", version.subject, {"note": note})
            return Signoff(version.ref, record.created_by, record.created_at, record.note)

    def waive(self, ref_or_evaluation: str | int, *, reason: str) -> ContaminationWaiver:
        """Waive an evaluation's near-duplicate overlap with a written reason: a reviewer who is not
        the evaluation's author; audited (see `charter.service.contamination`)."""
        return waive_contamination(self.registry, ref_or_evaluation, reason)

    def reproduce(self, ref: str, folder: str | Path, *, force: bool = False) -> Reproduction:
        """Materialise the version's training datasets at their exact snapshots into `folder`,
        verified byte for byte, with a manifest (see `charter.service.reproduce`)."""
        from charter.service.reproduce import reproduce

        return reproduce(self.registry, ref, folder, force=force)

    # --- model-level settings ---------------------------------------------------------------

    def reviewers(self, name: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Model:
        """Show, or (admin) change, the model's designated reviewers; with any, only they sign off."""
        adding, removing = set(add), set(remove)
        if not adding and not removing:
            return self.model(name)
        if adding & removing:
            raise InvalidInput(f"cannot both add and remove {', '.join(sorted(adding & removing))}")
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.MANAGE_REVIEWERS)
            model = _model(tx, name)
            current = set(tx.models.reviewers(model.id))
            for user in sorted(adding):
                found = tx.users.find(user)
                if found is None:
                    raise NotFound(f"user {user!r}", "add users with `charter user add`")
                if Role.REVIEWER not in found.roles or found.disabled:
                    raise InvalidInput(
                        f"{user} cannot sign off (disabled, or without the reviewer role); grant the role "
                        f"first: `charter user roles {user} --add reviewer`"
                    )
            if removing - current:
                raise InvalidInput(
                    f"{', '.join(sorted(removing - current))} not designated for {name}; designated: "
                    f"{', '.join(sorted(current)) or 'nobody'}"
                )
            after = (current | adding) - removing
            if after != current:
                tx.models.set_reviewers(model.id, after)
                changes = {"added": sorted(after - current), "removed": sorted(current - after)}
                tx.ledger.append(
                    self._actor,
                    "model.reviewers_changed",
                    f"model:{name}",
                    {**changes, "reviewers": sorted(after)},
                )
            return _summary(tx, model)

    def set_primary_metrics(self, name: str, metrics: Mapping[str, str]) -> Model:
        """Declare the model's primary metrics and their direction (admin; applies to later gates)."""
        declared = {k: v.value for k, v in parse_primary_metrics(metrics).items()}
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.SET_PRIMARY_METRICS)
            model = _model(tx, name)
            if declared != model.primary_metrics:
                tx.models.set_primary_metrics(model.id, declared)
                change = {"before": model.primary_metrics, "after": declared}
                tx.ledger.append(self._actor, "model.primary_metrics_changed", f"model:{name}", change)
            return _summary(tx, _model(tx, name))

    # --- promotion --------------------------------------------------------------------------

    def promote(
        self,
        ref: str,
        *,
        rollback_plan: str,
        rollback_to: str | None = None,
        eval: str | None = None,  # the contract's keyword
        dry_run: bool = False,
    ) -> gate.GateReport:
        """Evaluate the four-check promotion gate; when it passes (and not `dry_run`), move the
        model's `production` alias to this version. A failed gate raises `GateRefused` carrying the
        whole report and writes nothing."""
        model_ref = parse_model_ref(ref)
        target_ref = None if rollback_to is None else rollback_target(model_ref.name, rollback_to)
        eval_ref = None if eval is None else parse_dataset_ref(eval)
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.PROMOTE_MODEL)
            version = _resolve(tx, model_ref)
            model = _model(tx, version.name)
            champion_id = tx.models.alias_target(model.id, PRODUCTION)
            champion = None if champion_id is None else tx.models.version_by_id(champion_id)
            if champion is not None and champion.id == version.id:
                raise InvalidInput(
                    f"{version.ref} already holds {version.name}@{PRODUCTION}; nothing to promote"
                )
            target = None if target_ref is None else _find(tx, target_ref)
            report = promotion_report(
                tx,
                version,
                champion=champion,
                rollback_plan=rollback_plan,
                rollback_to=target,
                eval=eval_ref,
                rollback_to_requested=None if target_ref is None else str(target_ref),
            )
            if dry_run:
                return report
            if not report.passed:
                raise GateRefused(report.summary(), report.as_dict())
            payload = {
                "alias": PRODUCTION,
                "from": None if champion is None else champion.ref,
                "to": version.ref,
                "rollback_plan": rollback_plan.strip(),
                "rollback_to": None if target is None else target.ref,
            }
            event = tx.ledger.append(
                self._actor, "model.promoted", version.subject, payload, report.as_dict()
            )
            now = tx.clock.now()
            tx.models.move_alias(
                model.id,
                PRODUCTION,
                version.id,
                kind="promote",
                reason="passed the promotion gate",
                at=now,
                by=self._actor,
                audit_sequence=event.sequence,
            )
            tx.models.add_promotion(
                version.id,
                report.as_dict(),
                rollback_plan=rollback_plan.strip(),
                rollback_to_id=None if target is None else target.id,
                at=now,
                by=self._actor,
            )
            return report

    def rollback(self, name: str, reason: str = "") -> AliasMove:
        """Move `production` back to the version it held before the current one."""
        with self.registry.store.write() as tx:
            authorize(tx, self._actor, Action.ROLL_BACK)
            model = _model(tx, name)
            current_id = tx.models.alias_target(model.id, PRODUCTION)
            if current_id is None:
                hint = f"nothing has been promoted; promote with `charter model promote {name}@X.Y.Z`"
                raise NotFound(f"a production version of model {name!r}", hint)
            current = tx.models.version_by_id(current_id)
            moves = tx.models.alias_moves(model.id, PRODUCTION)
            previous = gate.previous_holder([(m.kind, m.to_version) for m in moves])
            if previous is None:
                hint = f"{current.ref} is the first version put into production"
                raise NotFound(f"an earlier production version of {name} to roll back to", hint)
            target = _resolve(tx, ModelRef(name, version=Version.parse(previous)))
            payload = {"alias": PRODUCTION, "from": current.ref, "to": target.ref, "reason": reason}
            event = tx.ledger.append(self._actor, "model.rolled_back", f"model:{name}", payload)
            tx.models.move_alias(
                model.id,
                PRODUCTION,
                target.id,
                kind="rollback",
                reason=reason,
                at=tx.clock.now(),
                by=self._actor,
                audit_sequence=event.sequence,
            )
            return view(AliasMove, tx.models.alias_moves(model.id, PRODUCTION)[-1])

    # --- reads ------------------------------------------------------------------------------

    def get(self, ref: str) -> ModelVersion:
        """A version by `name`, `name@1.2.3` or `name@alias`; a bare name is the highest version."""
        return self._cache.read(
            ("get", ref), lambda tx: _version_view(tx, _resolve(tx, parse_model_ref(ref)))
        )

    def describe(self, ref: str) -> VersionDetails:
        """A version with its evaluations, sign-offs and promotions."""

        def details(tx: Tx) -> VersionDetails:
            record = _resolve(tx, parse_model_ref(ref))
            return VersionDetails(
                _version_view(tx, record),
                _model(tx, record.name).primary_metrics,
                tuple(view(Evaluation, e) for e in tx.models.evaluations(record.id)),
                tuple(
                    Signoff(record.ref, s.created_by, s.created_at, s.note)
                    for s in tx.models.signoffs(record.id)
                ),
                tuple(_promotion(p) for p in tx.models.promotions(record.id)),
            )

        return self._cache.read(("describe", ref), details)

    def model(self, name: str) -> Model:
        """A model: its versions, aliases, primary metrics and designated reviewers."""
        return self._cache.read(("model", name), lambda tx: _summary(tx, _model(tx, name)))

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, lowest first."""

        def versions(tx: Tx) -> tuple[ModelVersion, ...]:
            return tuple(_version_view(tx, v) for v in tx.models.versions(_model(tx, name).id))

        return list(self._cache.read(("versions", name), versions))

    def diff(self, a: str, b: str) -> SpecDiff:
        """What changed from version `a` to version `b`, and the bump that change needs."""

        def compare(tx: Tx) -> SpecDiff:
            old, new = _resolve(tx, parse_model_ref(a)), _resolve(tx, parse_model_ref(b))
            meta = (
                FieldChange("description", old.description, new.description),
                FieldChange("tags", list(old.tags), list(new.tags)),
            )
            changed = tuple(m for m in meta if m.old != m.new)
            return SpecDiff(old.ref, new.ref, classify(old.spec, new.spec), changed)

        return self._cache.read(("diff", f"{a}\x1f{b}"), compare)

    def history(self, name: str) -> list[AliasMove]:
        """Every alias move of the model, oldest first, with actor, time and reason."""

        def moves(tx: Tx) -> tuple[AliasMove, ...]:
            return tuple(view(AliasMove, m) for m in tx.models.alias_moves(_model(tx, name).id))

        return list(self._cache.read(("history", name), moves))

    def list(self) -> list[Model]:
        """Every model, by name."""
        return list(
            self._cache.read(("list", ""), lambda tx: tuple(_summary(tx, m) for m in tx.models.all_models()))
        )


# --- functions over a transaction ----------------------------------------------------------------


def _model(tx: Tx, name: str) -> ModelRecord:
    model = tx.models.model(name)
    if model is None:
        raise NotFound(f"model {name!r}", "list models with `charter model list`")
    return model


def _find(tx: Tx, ref: ModelRef) -> ModelVersionRecord | None:
    """The version a reference names, if any: by version, by alias, or the highest."""
    model = tx.models.model(ref.name)
    if model is None:
        return None
    if ref.version is not None:
        return tx.models.version(model.id, ref.version)
    if ref.alias is not None:
        target = tx.models.alias_target(model.id, ref.alias)
        return None if target is None else tx.models.version_by_id(target)
    return tx.models.highest(model.id)


def _resolve(tx: Tx, ref: ModelRef) -> ModelVersionRecord:
    record = _find(tx, ref)
    if record is not None:
        return record
    model = _model(tx, ref.name)
    if ref.alias == PRODUCTION:
        raise NotFound(f"alias {ref}", f"promote a version with `charter model promote {ref.name}@X.Y.Z`")
    if ref.alias is not None:
        aliases = ", ".join(sorted(tx.models.aliases(model.id))) or "none"
        raise NotFound(f"alias {ref}", f"aliases of {ref.name}: {aliases}")
    raise NotFound(f"model version {ref}", f"list versions with `charter model versions {ref.name}`")


def _version_view(tx: Tx, record: ModelVersionRecord) -> ModelVersion:
    aliases = tuple(sorted(a for a, v in tx.models.aliases(record.model_id).items() if v == record.id))
    return ModelVersion(
        record.name,
        record.version,
        record.spec,
        record.spec_digest,
        record.description,
        record.tags,
        aliases,
        record.created_at,
        record.created_by,
    )


def _summary(tx: Tx, model: ModelRecord) -> Model:
    versions = tx.models.versions(model.id)
    by_id = {v.id: str(v.version) for v in versions}
    aliases = {alias: by_id[vid] for alias, vid in sorted(tx.models.aliases(model.id).items())}
    numbers = tuple(str(v.version) for v in versions)
    reviewers = tx.models.reviewers(model.id)
    return Model(
        model.name, model.primary_metrics, reviewers, aliases, numbers, model.created_at, model.created_by
    )


def _held_out_evaluation(
    tx: Tx, version: ModelVersionRecord, dataset: DatasetRef | None
) -> tuple[EvaluationRecord | None, str]:
    """The evaluation the gate judges, or why there is none (and what to record)."""
    record = f"`charter model eval {version.ref} --dataset {{}} --metric NAME=VALUE`"
    if dataset is not None:
        chosen = tx.datasets.get_version(dataset)
        found = tx.models.latest_evaluation(version.id, dataset_version_id=chosen.id)
        missing = (
            f"no evaluation of {version.ref} on {chosen.ref}; record one with {record.format(chosen.ref)}"
        )
        return found, missing
    found = tx.models.latest_evaluation(version.id, roles=gate.HELD_OUT_ROLES)
    missing = (
        f"{version.ref} has no evaluation on an eval or holdout dataset version; record one with "
        + record.format("DATASET@N")
    )
    return found, missing


def _promotion(record: PromotionRecord) -> dict[str, Any]:
    return {k: v for k, v in as_fields(record).items() if k not in ("id", "model_version_id")}


def _facts(record: EvaluationRecord | None, tx: Tx | None = None) -> gate.EvaluationFacts | None:
    if record is None:
        return None
    facts = view(Evaluation, record).facts()
    waiver = None if tx is None else waiver_facts(tx, record.id)
    return facts if waiver is None else dataclasses.replace(facts, waiver=waiver)


def _overlap(blobs: Any, evaluated: DatasetVersionRecord, training: DatasetVersionRecord) -> dict[str, Any]:
    from charter.service.dataset_results import overlap_between

    result = overlap_between(blobs, evaluated, training)
    measured = {"overlapping": result.overlapping, "a_total": result.a_total, "ratio": result.ratio}
    return {**result.as_dict(), **measured, "method": result.method}


# --- parsing arguments ---------------------------------------------------------------------------


# --- for the deployment tracks: a slot's rollout evaluates the same gate before real traffic -------

resolve_version = _resolve  # a ModelRef → its version record (NotFound saying what exists)
version_view = _version_view  # a version record → the ModelVersion result


def promotion_report(
    tx: Tx,
    version: ModelVersionRecord,
    *,
    champion: ModelVersionRecord | None,
    rollback_plan: str,
    rollback_to: ModelVersionRecord | None,
    eval: DatasetRef | None = None,
    rollback_to_requested: str | None = None,
) -> gate.GateReport:
    """The four-check promotion gate for `version` with an explicit champion and rollback target
    (`model promote`: the alias holder; a slot's rollout: the model version of the slot's
    production release, for both). `rollback_to_requested` names a target that was asked for but
    does not exist, so the report can say so."""
    model = _model(tx, version.name)
    evaluation, missing = _held_out_evaluation(tx, version, eval)
    champion_eval = None
    if champion is not None and evaluation is not None:
        on_same = evaluation.dataset_version_id
        champion_eval = tx.models.latest_evaluation(champion.id, dataset_version_id=on_same)
    facts = gate.GateInput(
        candidate=version.ref,
        author=version.created_by,
        training_datasets=version.spec.training.datasets,
        evaluation=_facts(evaluation, tx),
        missing_evaluation=missing,
        primary_metrics=model.primary_metrics,
        champion=None if champion is None else champion.ref,
        champion_evaluation=_facts(champion_eval),
        signoffs=tuple(
            gate.SignoffFacts(s.created_by, s.created_at.isoformat(), s.note)
            for s in tx.models.signoffs(version.id)
        ),
        designated_reviewers=frozenset(tx.models.reviewers(model.id)),
        rollback_plan=rollback_plan,
        rollback_to=rollback_to.ref if rollback_to is not None else rollback_to_requested,
        rollback_to_exists=rollback_to is not None,
    )
    return gate.evaluate_gate(facts)

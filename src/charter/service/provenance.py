"""Investigation: what exactly produced a transaction, and what a slot was running at any time.

- `reg.trace(txn_id)`: the whole chain of one transaction record — slot, stage and arm, routing
  table version and stale flag, the release (effective parameters and where each came from), the
  model version (spec, training dataset snapshots, evaluations with their overlap checks,
  sign-offs, promotion-gate evidence), the prompt versions (text), the retrieval index, the
  rollout's approvals, checklist and overrides, and the slot's production release at that time.
- `reg.state(slot, at=T)`: production release, active rollout, stage and traffic split at an
  instant — a fold over the slot's audit events up to T (the ledger is the source of truth).
- `reg.state_diff(slot, t1, t2)`: what changed between two instants (model, prompts, parameters,
  datasets, application version, policy, rollout, stage, traffic) and the events in between.
- `reg.changes(since, until, slot=)`: every audit event of the window across the four registries,
  in order; with a slot, the slot's events and those of the models, prompts and datasets its
  releases name.
- `production_periods(model)`: when each version of a model was production on each slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from charter.domain.ledger import AuditEvent, format_time
from charter.domain.roles import Action
from charter.domain.rollout import ACTIVE_PHASES
from charter.domain.tracks import track_policies
from charter.errors import InvalidInput, NotFound
from charter.service.access import authorize
from charter.service.policies import current_policy
from charter.service.releases import release_view, require_slot
from charter.service.trace_cache import MISSING, TraceMemo
from charter.service.trace_chain import release_chain, rollout_facts
from charter.storage.rollouts import RolloutRecord, TransitionRecord
from charter.storage.slots import state_events
from charter.storage.store import Tx
from charter.storage.trace_reads import CHAIN, PERIODS, RELEASE, ROLLOUT, VERSION, read_trace

if TYPE_CHECKING:
    from charter.service.registry import Registry


@dataclass(frozen=True)
class Trace:
    transaction: Mapping[str, Any]
    slot: str
    release: Mapping[str, Any]
    model: Mapping[str, Any]
    prompts: tuple[Mapping[str, Any], ...]
    datasets: Mapping[str, Any]
    rollout: Mapping[str, Any] | None
    production_at_time: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "transaction": dict(self.transaction),
            "slot": self.slot,
            "release": dict(self.release),
            "model": dict(self.model),
            "prompts": [dict(p) for p in self.prompts],
            "datasets": dict(self.datasets),
            "rollout": None if self.rollout is None else dict(self.rollout),
            "production_at_time": self.production_at_time,
        }


@dataclass(frozen=True)
class SlotState:
    slot: str
    at: datetime
    exists: bool
    production: Mapping[str, Any] | None  # the release, with model, prompts, parameters, datasets
    rollout: Mapping[str, Any] | None  # id, candidate, phase, stage, status
    traffic: Mapping[str, Any]  # candidate %, baseline %, shadow sample
    routing_version: int
    policy: Mapping[str, Any] | None
    last_event: int | None  # the sequence of the last audit event folded in

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "at": self.at.isoformat(),
            "exists": self.exists,
            "production": None if self.production is None else dict(self.production),
            "rollout": None if self.rollout is None else dict(self.rollout),
            "traffic": dict(self.traffic),
            "routing_version": self.routing_version,
            "policy": None if self.policy is None else dict(self.policy),
            "last_event": self.last_event,
        }


@dataclass(frozen=True)
class StateDiff:
    slot: str
    before: SlotState
    after: SlotState
    changes: tuple[Mapping[str, Any], ...]
    events: tuple[Mapping[str, Any], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "from": self.before.as_dict(),
            "to": self.after.as_dict(),
            "changes": [dict(c) for c in self.changes],
            "events": [dict(e) for e in self.events],
        }


class ProvenanceService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._memo = TraceMemo()  # what `trace` read, kept until an audit event touches it

    # --- trace ----------------------------------------------------------------------------------

    def trace(self, txn_id: str) -> Trace:
        """The whole chain of one transaction record (see the module docstring). What it reads
        besides the record is kept, and dropped only when an audit event touches it (see
        `charter.service.trace_cache`), so a trace is two indexed reads (the audit events since the
        memo's head, the record) when nothing it shows changed; what is not kept is read in one
        more statement (`charter.storage.trace_reads`)."""
        text = txn_id.strip().lower()
        memo, actor = self._memo, self.registry.actor
        with self.registry.store.read_each() as tx:  # (a snapshot in common is not needed:)
            at = memo.catch_up(tx.ledger, actor)  # first: everything read below is at least this new
            memo.get(("authorised",), lambda: (authorize(tx, actor, Action.READ), (f"user:{actor}",)), at)
            record = tx.transactions.get(text)
            if record is None:
                raise NotFound(
                    f"transaction {txn_id}", "transaction ids are UUIDv7s, as recorded or ingested"
                )
            release, chain, periods, facts = self._kept(record.release_id, record.rollout_id)
            version: Any = MISSING  # needed for the chain only
            if chain is MISSING and release is not MISSING:
                version = memo.peek(("version", release.model_version_id))
            kinds = {kind for kind, value in ((RELEASE, release), (CHAIN, chain), (PERIODS, periods),
                     (ROLLOUT, facts)) if value is MISSING}  # fmt: skip
            if chain is MISSING and version is MISSING:
                kinds.add(VERSION)
            reads = read_trace(
                tx.conn, kinds, release_id=record.release_id, rollout_id=record.rollout_id,
                prompt_version_ids=() if release is MISSING else release.prompt_version_ids,
            )  # fmt: skip
            if release is MISSING:
                release = memo.keep(("release", record.release_id), reads.release, (), at)
            if chain is MISSING:
                if version is MISSING:  # what a trace shows of it is immutable
                    version = memo.keep(("version", release.model_version_id), reads.version, (), at)
                assert reads.chain is not None
                chain, chain_tags = release_chain(tx, release, version, reads.chain)
                memo.keep(("chain", release.id), chain, chain_tags, at)
            if periods is MISSING:
                slot_tag = (f"slot:{release.slot}",)
                periods = memo.keep(("periods", release.slot_id), reads.periods, slot_tag, at)
            if facts is MISSING:
                facts, rollout_tags = rollout_facts(reads.rollout)
                memo.keep(("rollout", record.rollout_id), facts, rollout_tags, at)
            rollout = None if facts is None else _rollout_at(facts, record.time)
        production = next(
            (p.release for p in reversed(periods) if p.started_at <= record.time
             and (p.ended_at is None or record.time < p.ended_at)),
            None,
        )  # fmt: skip
        transaction = {
            "id": record.id,
            "time": record.time.isoformat(),
            "slot": release.slot,
            "release": release.digest,
            "arm": record.arm,
            "stage": record.stage,
            "rollout": record.rollout_id,
            "table_version": record.table_version,
            "stale": record.stale,
            "latency_ms": record.latency_ms,
            "error": record.error,
            "key": record.key,
            "metrics": record.metrics,
            "inputs": record.inputs,
            "parent_id": record.parent_id,
        }
        return Trace(
            transaction, release.slot, chain["release"], chain["model"], chain["prompts"], chain["datasets"],
            rollout, production,
        )  # fmt: skip

    def _kept(self, release_id: int, rollout_id: str | None) -> tuple[Any, Any, Any, Any]:
        """What the memo has of a transaction's release, chain, periods and rollout (`MISSING`
        where it has nothing; the slot's periods are looked up only when the release is kept, since
        they are keyed by its slot)."""
        memo = self._memo
        release = memo.peek(("release", release_id))
        periods = MISSING if release is MISSING else memo.peek(("periods", release.slot_id))
        facts = None if rollout_id is None else memo.peek(("rollout", rollout_id))
        return release, memo.peek(("chain", release_id)), periods, facts

    # --- state at a time ------------------------------------------------------------------------

    def state(self, slot: str, at: datetime | None = None) -> SlotState:
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return slot_state(tx, slot, at or tx.clock.now())

    def state_diff(self, slot: str, t1: datetime, t2: datetime) -> StateDiff:
        if t2 < t1:
            raise InvalidInput(f"--to {t2.isoformat()} is before --from {t1.isoformat()}")
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            before, after = slot_state(tx, slot, t1), slot_state(tx, slot, t2)
            events = tx.ledger.events(subject=f"slot:{slot}", since=format_time(t1), until=_after(t2))
            events = [e for e in events if e.time > format_time(t1)]
        return StateDiff(
            slot, before, after, tuple(_changes(before, after)), tuple(e.as_dict() for e in events)
        )

    def changes(
        self, since: datetime, until: datetime | None = None, *, slot: str | None = None
    ) -> list[AuditEvent]:
        """Every audit event with since ≤ time < until, in order (about `slot`, if given)."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            end = until or tx.clock.now()
            if end < since:
                raise InvalidInput(f"--until {end.isoformat()} is before --since {since.isoformat()}")
            events = tx.ledger.events(
                since=format_time(since), until=_after(end) if until is None else format_time(end)
            )
            if slot is None:
                return events
            subjects, prefixes = _related(tx, slot)
        return [e for e in events if e.subject in subjects or e.subject.startswith(prefixes)]

    # --- production periods of a model ------------------------------------------------------------

    def production_periods(self, model: str) -> list[dict[str, Any]]:
        """Each version of `model` that was a slot's production release, when, on which slot."""
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.READ)
            return model_production_periods(tx, model)


# --- functions over a transaction ----------------------------------------------------------------


def model_production_periods(tx: Tx, model: str) -> list[dict[str, Any]]:
    record = tx.models.model(model)
    if record is None:
        raise NotFound(f"model {model!r}", "list models with `charter model list`")
    releases = dict(((r.id, (r, v)) for r, v in tx.slots.releases_with_model(record.id)))
    if not releases:
        return []
    return [
        {
            "version": releases[p.release_id][1],
            "slot": p.slot,
            "release": p.release,
            "from": p.started_at.isoformat(),
            "to": None if p.ended_at is None else p.ended_at.isoformat(),
            "kind": p.kind,
            "rollout": p.rollout_id,
        }
        for p in tx.slots.periods(release_ids=releases)
    ]


def slot_state(tx: Tx, slot: str, at: datetime) -> SlotState:
    """The slot's state at `at` (inclusive), read from its audit events: every event that changes a
    slot's production release or rollout carries the resulting state, so the last one before `at`
    is the answer (two indexed reads, whatever the length of the history)."""
    record = require_slot(tx, slot)
    created, last = state_events(tx.conn, record.subject, _after(at))
    policy: dict[str, Any] | None = None
    if created is not None:
        payload = created[1]
        policy = {"name": payload.get("policy"), "source": payload.get("policy_source"),
                  "digest": payload.get("policy_digest")}  # fmt: skip
        if policy["source"] == "tracks":
            named = track_policies(current_policy(tx, at).section("tracks")).get(str(policy["name"]))
            policy["digest"] = None if named is None else named.digest()
    production, version = None, 0
    rollout: dict[str, Any] | None = None
    if last is not None:
        _, action, payload = last
        production = payload.get("production")
        version = int(payload.get("routing_version", 0))
        if action.startswith("rollout.") and payload.get("phase") in ACTIVE_PHASES:
            rollout = {
                key: payload.get(key) for key in ("rollout", "candidate", "baseline", "phase", "stage")
            }
            rollout.update(status=payload.get("to"), traffic=payload.get("traffic"))
    release = None
    if production is not None:
        found = tx.slots.release_by_digest(production)
        release = None if found is None else release_view(tx, found).as_dict()
    traffic: dict[str, float] = {"candidate": 0.0, "baseline": 100.0, "shadow_sample": 0.0}
    if rollout is not None and rollout["phase"] in ("running", "paused"):
        traffic = dict(rollout["traffic"])
    if release is None:
        traffic = {"candidate": 0.0, "baseline": 0.0, "shadow_sample": 0.0}
    return SlotState(
        slot,
        at,
        created is not None,
        release,
        rollout,
        traffic,
        version,
        policy,
        None if last is None else last[0],
    )


def _after(at: datetime) -> str:
    """An exclusive upper bound that includes every event stamped at `at` (microsecond resolution)."""
    return format_time(at)[:-1] + "\x7f"


_COMPARED = (
    ("production", lambda s: s.production and s.production["digest"]),
    ("model", lambda s: s.production and s.production["model"]),
    ("prompts", lambda s: s.production and list(s.production["prompts"])),
    ("params", lambda s: s.production and s.production["effective_params"]),
    ("retrieval_index", lambda s: s.production and s.production["retrieval_index"]),
    ("app_version", lambda s: s.production and s.production["app_version"]),
    ("policy", lambda s: s.policy and s.policy.get("digest")),
    ("rollout", lambda s: s.rollout and s.rollout["rollout"]),
    ("candidate", lambda s: s.rollout and s.rollout["candidate"]),
    ("stage", lambda s: s.rollout and s.rollout["stage"]),
    ("phase", lambda s: s.rollout and s.rollout["phase"]),
    ("traffic", lambda s: dict(s.traffic)),
)


def _changes(before: SlotState, after: SlotState) -> list[dict[str, Any]]:
    out = []
    for name, read in _COMPARED:
        a, b = read(before) or None, read(after) or None
        if a != b:
            out.append({"field": name, "from": a, "to": b})
    return out


def _related(tx: Tx, slot: str) -> tuple[set[str], tuple[str, ...]]:
    """Audit subjects about a slot and about the models, prompts and datasets its releases name."""
    record = require_slot(tx, slot)
    subjects = {record.subject}
    prefixes: list[str] = []
    for release in tx.slots.releases_of(record.id):
        version = tx.models.version_by_id(release.model_version_id)
        subjects.update({version.subject, f"model:{version.name}"})
        for version_id in release.prompt_version_ids:
            prompt = tx.prompts.version_by_id(version_id)
            subjects.update({prompt.subject, f"prompt:{prompt.name}"})
        datasets = list(version.spec.training.datasets)
        if release.retrieval_index_id is not None:
            datasets.append(tx.datasets.by_id(release.retrieval_index_id).ref)
        subjects.update(f"dataset:{ref}" for ref in datasets)
    return subjects, tuple(prefixes)


def _rollout_at(facts: dict[str, Any] | None, at: datetime) -> dict[str, Any] | None:
    """The rollout as a transaction at `at` saw it, with its approvals, checklist and overrides."""
    if facts is None:
        return None
    record: RolloutRecord = facts["record"]
    steps: list[TransitionRecord] = facts["steps"]
    upto = [t for t in steps if t.at <= at] or steps[:1]
    state = record.state
    return {
        "id": record.id,
        "candidate": state["candidate"],
        "baseline": state["baseline"],
        "policy": state["policy"],
        "policy_digest": state["policy_digest"],
        "stage_at_time": upto[-1].stage if upto else None,
        "status_at_time": upto[-1].to_status if upto else None,
        "status_now": state["status"],
        "started_by": record.started_by,
        "started_at": record.started_at.isoformat(),
        "rollback_plan": record.rollback_plan,
        "approval_required": state["approval_required"],
        "approved_by": state["approved_by"],
        "approved_at": state["approved_at"],
        "checklist": [
            {"item": t.evidence.get("item"), "by": t.actor, "at": t.at.isoformat()}
            for t in steps
            if t.action == "check"
        ],
        "overrides": [
            {**t.evidence["override"], "at": t.at.isoformat(), "stage": t.from_status}
            for t in steps
            if t.evidence.get("override")
        ],
        "pre_traffic": record.gate_report,
        "transitions": [
            {
                "action": t.action,
                "from": t.from_status,
                "to": t.to_status,
                "at": t.at.isoformat(),
                "actor": t.actor,
            }
            for t in upto
        ],
    }

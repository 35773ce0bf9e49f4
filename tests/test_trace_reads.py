"""The trace's combined read (`charter.storage.trace_reads`) against the plain per-kind reads: for
every release and rollout of a store that holds each kind of chain, the records are the same, each
kind read alone or all together; and a trace through the combined read equals a trace through the
plain reads. A wrong join, a lost row, a float rounded by SQLite's JSON or a timestamp converted
differently fails here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from itertools import combinations
from pathlib import Path

import pytest
import sqlalchemy as sa

from charter.clock import ManualClock
from charter.domain.refs import parse_dataset_ref
from charter.domain.semver import Version
from charter.service import provenance
from charter.service.prompt_validation import ValidationRun
from charter.service.registry import Registry
from charter.storage.schema import model_training_datasets, releases, rollouts
from charter.storage.store import Tx
from charter.storage.trace_reads import (
    CHAIN,
    KINDS,
    PERIODS,
    RELEASE,
    ROLLOUT,
    VERSION,
    ChainRecords,
    TraceReads,
    read_trace,
)
from tests.test_model_service import seed_dataset
from tests.test_model_with_dataset_snapshots import csv
from tests.test_prompt_helpers import write
from tests.test_provenance_history import candidate_key, one
from tests.test_slot_helpers import MODEL_SPEC, PLAN, QUICK_TRACK, World, prompt_file, traffic, world

ODD_RATE = 29 / 30  # 0.9666666666666667: SQLite's JSON would write 0.966666666666667


@dataclass
class Scenario:
    w: World
    txns: dict[str, str]  # what each transaction shows → its id


@pytest.fixture
def scenario(registry: Registry, tmp_path: Path, clock: ManualClock) -> Scenario:
    """One slot through a whole rollout to production (shadow, canary, an override, the checklist,
    the promotion with its rollback target and production metrics), then a major model change
    with training datasets, two prompts and a derived retrieval index waiting for its approval;
    a second slot whose release has no prompts and no rollout."""
    w = world(registry, tmp_path, clock)
    reg, txns = w.admin, {}
    txns["production, no rollout"] = one(w.sam, "alice", quality=0.8)
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    txns["shadow"] = one(w.sam, "alice", quality=0.8, format_ok=1)
    traffic(w.sam, "agent", 100)
    clock.advance(timedelta(hours=1))
    w.olga.rollouts.advance("agent")
    txns["canary, candidate arm"] = one(w.sam, candidate_key(w.sam), quality=0.81)
    clock.advance(timedelta(hours=2))
    reg.rollouts.advance("agent", override=True, reason="canary looks fine by hand")
    for item in ("rollback-tested", "oncall-briefed"):
        w.olga.rollouts.check("agent", item=item)
    traffic(w.sam, "agent", 600, seed=3)
    clock.advance(timedelta(hours=1))
    w.olga.rollouts.advance("agent")  # production: promotion, production metrics, a new period
    txns["after the rollout"] = one(w.sam, "bob", quality=0.9)

    def snapshot(name: str, rows: range, role: str, derived_from: str | None = None) -> str:
        path = csv(tmp_path / f"{name}.csv", rows)
        return reg.datasets.add(name, path, role=role, derived_from=derived_from).version.ref

    raw = snapshot("raw", range(100), "train")
    train = snapshot("train", range(50), "train", derived_from=raw)
    index = snapshot("index", range(50, 100), "production-sample", derived_from=raw)
    held = snapshot("held", range(200, 260), "holdout")
    spec = {**MODEL_SPEC, "family": "gpt-4o", "provider": "openai", "provider_model": "gpt-4o-2024-08-06",
            "training": {"datasets": [train, raw], "date": "2026-01-02"}}  # fmt: skip
    reg.models.register("n", spec)
    reg.models.eval("n@1.0.0", dataset=held, metrics={"accuracy": 0.95})
    w.rita.models.signoff("n@1.0.0", note="fine")
    folder = tmp_path / "prompts"
    write(folder, "other.prompt.yaml", prompt_file(1).replace("name: greet", "name: other"))
    reg.prompts.sync(folder)
    sample = seed_dataset(reg, "sample", "production-sample")
    for passed in (30, 29):  # the latest of two validations is shown
        run = ValidationRun(30, passed, (), 0.25, {"kind": "fake"})
        reg.prompts.record_validation("other-v1", sample=sample, run=run)
    major = reg.releases.create(
        "agent", model="n@1.0.0", prompts=["greet-v2", "other-v1"], params={"temperature": 0.1},
        retrieval_index=index, app_version="abc123",
    )  # fmt: skip
    w.olga.rollouts.start("agent", release=major.digest, rollback_plan=PLAN)
    w.rita.rollouts.approve("agent")
    w.sam.router.invalidate()
    with w.sam.transaction("agent", key="carol") as shadowed:
        shadowed.record(quality=0.7, format_ok=1)
        shadowed.record_shadow(quality=0.7, format_ok=1)
    w.sam.flush()
    txns["baseline arm of a rollout in shadow"] = shadowed.id
    txns["major change, approved, shadow arm"] = shadowed.shadow_id()

    reg.slots.create("plain", policy=QUICK_TRACK)
    bare = reg.releases.create("plain", model="m@1.0.0")
    w.olga.slots.bootstrap("plain", release=bare.digest)
    w.sam.router.invalidate()
    with w.sam.transaction("plain", key="dave") as txn:
        txn.record(quality=0.5)
    w.sam.flush()
    txns["no prompts, no rollout"] = txn.id
    return Scenario(w, txns)


def _plain(tx: Tx, kinds: Iterable[str], release_id: int, rollout_id: str | None) -> TraceReads:
    """What the per-kind repository reads return for the same question."""
    wanted = set(kinds)
    release = tx.slots.release_record(release_id)
    version = tx.models.version_by_id(release.model_version_id)
    ids, index_id = release.prompt_version_ids, release.retrieval_index_id
    evaluations, signoffs, promotions = tx.models.evidence(version.id)
    chain = ChainRecords(
        training={r: tx.datasets.get_version(parse_dataset_ref(r)) for r in version.spec.training.datasets},
        prompts=tx.prompts.versions_by_ids(ids),
        validations=tx.prompts.latest_validations(ids),
        evaluations=evaluations,
        signoffs=signoffs,
        promotions=promotions,
        production_metrics=tx.rollouts.model_production_metrics(version.id),
        retrieval_index=None if index_id is None else tx.datasets.by_id(index_id),
    )  # fmt: skip
    found = (
        None
        if ROLLOUT not in wanted or rollout_id is None
        else tx.rollouts.rollout_with_transitions(rollout_id)
    )
    return TraceReads(
        release if RELEASE in wanted else None,
        version if VERSION in wanted else None,
        chain if CHAIN in wanted else None,
        tx.slots.slot_periods(release.slot_id) if PERIODS in wanted else None,
        found,
    )  # fmt: skip


def test_the_scenario_holds_every_kind_of_chain(scenario: Scenario) -> None:
    """(So that the comparisons below cannot pass on empty chains.)"""
    with scenario.w.admin.store.read() as tx:
        reads = [
            read_trace(tx.conn, _kinds(rollout_id), release_id=release_id, rollout_id=rollout_id)
            for release_id, rollout_id in _pairs(tx)
        ]
    chains = [r.chain for r in reads if r.chain is not None]
    assert any(c.promotions and c.promotions[0].rollback_to for c in chains)
    assert any(c.production_metrics for c in chains) and any(c.signoffs for c in chains)
    assert any(c.retrieval_index and c.retrieval_index.derived_from == "raw@1" for c in chains)
    assert any(len(c.training) == 2 for c in chains) and any(len(c.prompts) == 2 for c in chains)
    assert any(v.pass_rate == ODD_RATE for c in chains for v in c.validations.values())
    assert any(not c.prompts for c in chains)
    assert any(r.rollout and r.rollout[0].state["approved_by"] == "rita" for r in reads)
    assert any(r.rollout and any(t.evidence.get("override") for t in r.rollout[1]) for r in reads)
    assert any(r.periods and len(r.periods) > 1 for r in reads)


def _kinds(rollout_id: str | None) -> tuple[str, ...]:
    return KINDS if rollout_id is not None else tuple(k for k in KINDS if k != ROLLOUT)


def _pairs(tx: Tx) -> list[tuple[int, str | None]]:
    """Every release with every rollout of its slot, and with none."""
    pairs: list[tuple[int, str | None]] = []
    for release_id, slot_id in tx.conn.execute(sa.select(releases.c.id, releases.c.slot_id)):
        pairs.append((release_id, None))
        ids = tx.conn.execute(sa.select(rollouts.c.id).where(rollouts.c.slot_id == slot_id)).scalars()
        pairs.extend((release_id, rollout_id) for rollout_id in ids)
    return pairs


def test_each_kind_read_together_or_alone_equals_the_plain_reads(scenario: Scenario) -> None:
    with scenario.w.admin.store.read() as tx:
        for release_id, rollout_id in _pairs(tx):
            release = tx.slots.release_record(release_id)
            kinds = _kinds(rollout_id)
            for n in (len(kinds), 1, 2):
                for subset in combinations(kinds, n):
                    found = read_trace(tx.conn, subset, release_id=release_id, rollout_id=rollout_id,
                                       prompt_version_ids=release.prompt_version_ids)  # fmt: skip
                    assert found == _plain(tx, subset, release_id, rollout_id), (release_id, subset)


def test_a_rollout_that_is_not_there_is_not_found(scenario: Scenario) -> None:
    with scenario.w.admin.store.read() as tx:
        release_id, _ = _pairs(tx)[0]
        found = read_trace(tx.conn, [ROLLOUT], release_id=release_id, rollout_id="no-such-rollout")
    assert found == TraceReads()
    with pytest.raises(ValueError, match="needs its id"):
        read_trace(tx.conn, [ROLLOUT], release_id=release_id)


def test_a_trace_through_the_combined_read_equals_one_through_the_plain_reads(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = scenario.w.admin
    combined = {name: reg.as_user("admin").trace(txn_id).as_dict() for name, txn_id in scenario.txns.items()}

    def plain(conn: sa.Connection, kinds: Iterable[str], *, release_id: int, rollout_id: str | None = None,
              prompt_version_ids: tuple[int, ...] = ()) -> TraceReads:  # fmt: skip
        with reg.store.read() as tx:
            return _plain(tx, kinds, release_id, rollout_id)

    monkeypatch.setattr(provenance, "read_trace", plain)
    for name, txn_id in scenario.txns.items():
        assert reg.as_user("admin").trace(txn_id).as_dict() == combined[name], name
    shown = combined["major change, approved, shadow arm"]
    assert [d["ref"] for d in shown["model"]["training_datasets"]] == ["raw@1", "train@1"]
    assert (
        shown["rollout"]["approved_by"] == "rita" and shown["datasets"]["retrieval_index"]["ref"] == "index@1"
    )
    assert (
        combined["no prompts, no rollout"]["prompts"] == []
        and combined["no prompts, no rollout"]["rollout"] is None
    )


def test_a_training_dataset_without_its_link_row_is_read_by_its_ref(scenario: Scenario) -> None:
    reg = scenario.w.admin
    txn_id = scenario.txns["major change, approved, shadow arm"]
    linked = reg.as_user("admin").trace(txn_id).as_dict()
    with reg.store.write() as tx:
        model = tx.models.model("n")
        assert model is not None
        version = tx.models.version(model.id, Version(1, 0, 0))
        assert version is not None
        tx.conn.execute(
            sa.delete(model_training_datasets).where(model_training_datasets.c.model_version_id == version.id)
        )
    assert reg.as_user("admin").trace(txn_id).as_dict() == linked

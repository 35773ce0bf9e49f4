"""The model registry through the service, on SQLite and PostgreSQL.

Dataset versions are seeded through the dataset repository (with their audit event) so these tests
do not depend on the snapshot engine; `test_model_with_dataset_snapshots.py` uses real snapshots.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import pytest

from charter.errors import (
    AlreadyExists,
    BumpTooSmall,
    GateRefused,
    IdenticalSpec,
    InvalidInput,
    InvalidSpec,
    MissingRole,
    NotADesignatedReviewer,
    NotFound,
    SeparationOfDuties,
    UnpinnedModel,
    UserDisabled,
)
from charter.service.registry import Registry
from tests.conftest import ADMIN, add_user


def api_spec(snapshot: str = "gpt-4o-2024-08-06", **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "family": "gpt-4o",
        "provider": "openai",
        "provider_model": snapshot,
        "serving": {"temperature": 0.2, "max_tokens": 512},
        "primary_metrics": {"accuracy": "higher", "latency_ms": "lower"},
        "description": "support assistant",
        "tags": ["support"],
    }
    spec.update(overrides)
    return spec


def seed_dataset(registry: Registry, name: str, role: str, actor: str = ADMIN) -> str:
    """A dataset version row (no files), recorded the way the dataset service records one."""
    with registry.store.write() as tx:
        now = tx.clock.now()
        dataset_id = tx.datasets.dataset_id(name) or tx.datasets.create_dataset(name, at=now, by=actor)
        digest = secrets.token_hex(32)
        record = tx.datasets.insert_version(
            {
                "dataset_id": dataset_id,
                "digest": digest,
                "manifest_digest": digest,
                "kind": "files",
                "role": role,
                "sources": "[]",
                "derived_from_id": None,
                "message": "",
                "file_count": 0,
                "bytes_total": 0,
                "bytes_new": 0,
                "schema": None,
                "row_count": None,
                "fingerprints_digest": None,
                "profile": None,
                "created_at": now,
                "created_by": actor,
            }
        )
        tx.ledger.append(actor, "dataset.version_added", record.subject, {"digest": digest, "role": role})
        return record.ref


def ledger_length(registry: Registry) -> int:
    return len(registry.audit.log())


@pytest.fixture
def bob(registry: Registry) -> Registry:
    return add_user(registry, "bob", "reviewer")


# --- registering --------------------------------------------------------------------------------


def test_register_assigns_1_0_0_and_audits(registry: Registry) -> None:
    v = registry.models.register("support-llm", api_spec())
    assert v.ref == "support-llm@1.0.0" and v.created_by == ADMIN
    assert v.spec.provider_model == "gpt-4o-2024-08-06" and v.spec_digest == v.spec.digest
    assert v.description == "support assistant" and v.tags == ("support",)
    assert registry.models.get("support-llm") == v == registry.models.get("support-llm@1.0.0")
    events = registry.audit.log(subject="model:support-llm*")
    assert [e.action for e in events] == ["model.created", "model.registered"]
    assert events[0].payload["primary_metrics"] == {"accuracy": "higher", "latency_ms": "lower"}
    assert events[1].subject == "model:support-llm@1.0.0"
    assert events[1].payload["pin"]["rule"] == "date stamp"
    assert v.as_dict()["spec"]["provider_model"] == "gpt-4o-2024-08-06"


def test_the_next_version_follows_the_change(registry: Registry) -> None:
    models = registry.models
    models.register("m", api_spec())
    assert models.register("m", api_spec(serving={"temperature": 0.3})).ref == "m@1.0.1"
    assert models.register("m", api_spec("gpt-4o-2024-11-20")).ref == "m@1.1.0"
    claude = api_spec(family="claude", provider="anthropic", provider_model="claude-sonnet-4-5-20250929")
    assert models.register("m", claude).ref == "m@2.0.0"
    fix = api_spec("gpt-4o-2024-11-20", serving={"temperature": 0.0})
    assert models.register("m", fix, version="1.1.1").ref == "m@1.1.1"  # a fix to 1.x beside 2.0.0
    assert [str(v.version) for v in models.versions("m")] == ["1.0.0", "1.0.1", "1.1.0", "1.1.1", "2.0.0"]
    assert models.get("m").ref == "m@2.0.0"  # a bare name is the highest version


def test_a_too_small_bump_is_refused_and_writes_nothing(registry: Registry) -> None:
    registry.models.register("m", api_spec())
    before = ledger_length(registry)
    with pytest.raises(BumpTooSmall) as refused:
        registry.models.register("m", api_spec("gpt-4o-2024-11-20"), version="1.0.1")
    assert "provider snapshot changed" in refused.value.message and "at least 1.1.0" in refused.value.message
    assert ledger_length(registry) == before and len(registry.models.versions("m")) == 1


def test_an_identical_spec_is_refused(registry: Registry) -> None:
    registry.models.register("m", api_spec())
    with pytest.raises(IdenticalSpec, match=r"identical to m@1\.0\.0"):
        registry.models.register("m", api_spec(description="other words", tags=["x"]))


def test_floating_provider_models_are_refused_unless_the_policy_allows_them(registry: Registry) -> None:
    with pytest.raises(UnpinnedModel, match="gpt-4o"):
        registry.models.register("m", api_spec("gpt-4o"))
    with pytest.raises(UnpinnedModel):
        registry.models.register("m", api_spec("gpt-4o-latest"))
    registry.policies.apply({"pins": {"allow": ["^gpt-4o$"]}})
    v = registry.models.register("m", api_spec("gpt-4o"))
    pin = registry.audit.log(subject=f"model:{v.ref}")[0].payload["pin"]
    assert pin == {"provider_model": "gpt-4o", "rule": "policy pattern", "pattern": "^gpt-4o$"}


def test_training_datasets_must_exist_and_are_linked(registry: Registry) -> None:
    hosted = {
        "family": "llama-3",
        "architecture": "decoder-only",
        "parameter_count": "8B",
        "weights": {"uri": "s3://models/llama.safetensors", "digest": "sha256:" + "ab" * 32},
        "training": {"datasets": ["tickets@1"], "date": "2026-01-15"},
    }
    with pytest.raises(NotFound, match="tickets"):
        registry.models.register("llama", hosted)
    seed_dataset(registry, "tickets", "train")
    v = registry.models.register("llama", hosted)
    assert v.spec.training.datasets == ("tickets@1",) and v.spec.parameter_count == 8_000_000_000
    with registry.store.read() as tx:
        model = tx.models.model("llama")
        version = tx.models.highest(model.id) if model else None
        assert version is not None
        linked = [tx.datasets.by_id(i).ref for i in tx.models.training_dataset_ids(version.id)]
    assert linked == ["tickets@1"]
    with pytest.raises(InvalidSpec, match="a URI: give its digest"):
        registry.models.register("llama", {**hosted, "weights": "s3://models/other.safetensors"})


def test_primary_metrics_are_kept_per_model(registry: Registry) -> None:
    registry.models.register("m", api_spec())
    with pytest.raises(InvalidSpec, match="kept per model"):
        registry.models.register("m", api_spec("gpt-4o-2024-11-20", primary_metrics={"accuracy": "lower"}))
    registry.models.register(
        "m", {k: v for k, v in api_spec("gpt-4o-2024-11-20").items() if k != "primary_metrics"}
    )
    model = registry.models.set_primary_metrics("m", {"f1": "higher"})
    assert dict(model.primary_metrics) == {"f1": "higher"}
    event = registry.audit.log(subject="model:m")[-1]
    assert event.action == "model.primary_metrics_changed" and event.payload["after"] == {"f1": "higher"}
    with pytest.raises(MissingRole, match="admin"):
        add_user(registry, "carl", "author").models.set_primary_metrics("m", {"f1": "lower"})


def test_registering_needs_the_author_role(registry: Registry) -> None:
    viewer = add_user(registry, "vic", "viewer")
    with pytest.raises(MissingRole, match="author"):
        viewer.models.register("m", api_spec())
    with pytest.raises(InvalidInput):
        registry.models.register("Bad Name", api_spec())


# --- reading ------------------------------------------------------------------------------------


def test_references_resolve_and_missing_ones_say_what_exists(registry: Registry) -> None:
    registry.models.register("m", api_spec())
    with pytest.raises(NotFound, match=r"charter model promote m@X\.Y\.Z"):
        registry.models.get("m@production")
    with pytest.raises(NotFound, match="charter model versions m"):
        registry.models.get("m@3.0.0")
    with pytest.raises(NotFound, match="charter model list"):
        registry.models.get("nope")
    registry.models.register("m", api_spec("gpt-4o-2024-11-20", tags=["new"]))
    diff = registry.models.diff("m@1.0.0", "m@1.1.0").as_dict()
    assert diff["required_bump"] == "minor" and diff["changes"][0]["field"] == "provider_model"
    assert diff["metadata"] == [{"field": "tags", "old": ["support"], "new": ["new"]}]
    [summary] = registry.models.list()
    assert summary.as_dict()["latest"] == "1.1.0" and summary.versions == ("1.0.0", "1.1.0")


def test_cached_reads_follow_every_change(registry: Registry, bob: Registry) -> None:
    registry.models.register("m", api_spec())
    reader = add_user(registry, "rita", "viewer")
    assert reader.models.get("m").ref == "m@1.0.0"
    assert reader.models.get("m").ref == "m@1.0.0"  # served from the cache
    registry.models.register("m", api_spec("gpt-4o-2024-11-20"))
    assert reader.models.get("m").ref == "m@1.1.0"
    registry.users.disable("rita")
    with pytest.raises(UserDisabled):
        reader.models.get("m")


# --- sign-off -----------------------------------------------------------------------------------


def test_nobody_signs_off_their_own_version_not_even_an_admin(registry: Registry, bob: Registry) -> None:
    registry.models.register("m", api_spec())
    with pytest.raises(SeparationOfDuties, match="admin included"):
        registry.models.signoff("m@1.0.0")
    signed = bob.models.signoff("m@1.0.0", note="read the eval report")
    assert (signed.by, signed.model, signed.note) == ("bob", "m@1.0.0", "read the eval report")
    with pytest.raises(AlreadyExists):
        bob.models.signoff("m@1.0.0")
    assert registry.audit.log(subject="model:m@1.0.0")[-1].action == "model.signed_off"
    with pytest.raises(MissingRole, match="reviewer"):
        add_user(registry, "ann", "author").models.signoff("m@1.0.0")


def test_designated_reviewers_are_the_only_ones_who_may_sign_off(registry: Registry, bob: Registry) -> None:
    registry.models.register("m", api_spec())
    carol = add_user(registry, "carol", "reviewer")
    add_user(registry, "dave", "viewer")
    with pytest.raises(InvalidInput, match="reviewer role"):
        registry.models.reviewers("m", add=["dave"])
    with pytest.raises(NotFound):
        registry.models.reviewers("m", add=["nobody"])
    with pytest.raises(MissingRole, match="admin"):
        bob.models.reviewers("m", add=["bob"])
    assert registry.models.reviewers("m", add=["carol"]).reviewers == ("carol",)
    assert registry.audit.log(subject="model:m")[-1].payload["reviewers"] == ["carol"]
    with pytest.raises(NotADesignatedReviewer, match="charter model reviewers m --add bob"):
        bob.models.signoff("m@1.0.0")
    carol.models.signoff("m@1.0.0")
    assert registry.models.reviewers("m", remove=["carol"]).reviewers == ()
    bob.models.signoff("m@1.0.0")


# --- promotion and rollback ---------------------------------------------------------------------


def evaluate_and_sign(registry: Registry, bob: Registry, ref: str, dataset: str, **metrics: float) -> None:
    registry.models.eval(ref, dataset=dataset, metrics=metrics or {"accuracy": 0.9, "latency_ms": 100})
    bob.models.signoff(ref)


def test_a_refused_promotion_reports_every_check_and_writes_nothing(registry: Registry) -> None:
    registry.models.register("m", api_spec())
    before = ledger_length(registry)
    with pytest.raises(GateRefused) as refused:
        registry.models.promote("m@1.0.0", rollback_plan="")
    report = refused.value.report
    assert [c["name"] for c in report["checks"]] == [
        "held_out_evaluation",
        "champion_comparison",
        "sign_off",
        "rollback_plan",
    ]
    assert [c["passed"] for c in report["checks"]] == [False, True, False, False]
    assert "3 of 4 promotion checks failed" in refused.value.message
    assert ledger_length(registry) == before
    assert registry.models.history("m") == []
    with pytest.raises(NotFound):
        registry.models.get("m@production")


def test_a_passing_promotion_moves_the_alias_and_audits_the_evidence(
    registry: Registry, bob: Registry
) -> None:
    golden = seed_dataset(registry, "golden", "holdout")
    registry.models.register("m", api_spec())
    evaluate_and_sign(registry, bob, "m@1.0.0", golden)
    dry = registry.models.promote("m@1.0.0", rollback_plan="switch back to the rules engine", dry_run=True)
    assert dry.passed and registry.models.history("m") == []
    report = registry.models.promote("m@1.0.0", rollback_plan="switch back to the rules engine")
    assert report.passed and report.champion is None
    assert registry.models.get("m@production").ref == "m@1.0.0"
    assert registry.models.get("m@production").aliases == ("production",)
    event = registry.audit.log(subject="model:m@1.0.0")[-1]
    assert event.action == "model.promoted" and event.payload["from"] is None
    assert event.evidence["passed"] and len(event.evidence["checks"]) == 4
    assert event.evidence["checks"][0]["evidence"]["evaluation"]["dataset"] == golden
    [move] = registry.models.history("m")
    assert (move.alias, move.from_version, move.to_version, move.kind, move.actor) == (
        "production",
        None,
        "1.0.0",
        "promote",
        ADMIN,
    )
    assert move.audit_sequence == event.sequence
    details = registry.models.describe("m@production").as_dict()
    assert details["promotions"][0]["rollback_plan"] == "switch back to the rules engine"
    assert details["evaluations"][0]["dataset"] == golden and details["signoffs"][0]["by"] == "bob"
    with pytest.raises(InvalidInput, match="already holds"):
        registry.models.promote("m@1.0.0", rollback_plan="x")
    assert registry.audit.verify().ok


def test_the_champion_is_compared_on_the_same_eval_set(registry: Registry, bob: Registry) -> None:
    golden = seed_dataset(registry, "golden", "holdout")
    registry.models.register("m", api_spec())
    evaluate_and_sign(registry, bob, "m@1.0.0", golden, accuracy=0.90, latency_ms=100)
    registry.models.promote("m@1.0.0", rollback_plan="none needed")
    registry.models.register("m", api_spec("gpt-4o-2024-11-20"))
    evaluate_and_sign(registry, bob, "m@1.1.0", golden, accuracy=0.88, latency_ms=90)
    with pytest.raises(GateRefused) as worse:
        registry.models.promote("m@1.1.0", rollback_plan="back to 1.0.0", rollback_to="1.0.0")
    [failed] = [c for c in worse.value.report["checks"] if not c["passed"]]
    assert failed["name"] == "champion_comparison" and "accuracy 0.88 is worse" in failed["detail"]

    newer = seed_dataset(registry, "golden", "eval")  # golden@2: the champion has no result there
    registry.models.eval("m@1.1.0", dataset=newer, metrics={"accuracy": 0.95, "latency_ms": 90})
    with pytest.raises(GateRefused) as unmeasured:
        registry.models.promote("m@1.1.0", rollback_plan="back", rollback_to="1.0.0")
    comparison = unmeasured.value.report["checks"][1]
    assert f"charter model eval m@1.0.0 --dataset {newer}" in comparison["detail"]

    registry.models.eval("m@production", dataset=newer, metrics={"accuracy": 0.91, "latency_ms": 95})
    report = registry.models.promote("m@1.1.0", rollback_plan="back to 1.0.0", rollback_to="m@1.0.0")
    assert report.passed and report.champion == "m@1.0.0"
    assert registry.models.get("m@production").ref == "m@1.1.0"


def test_the_eval_set_can_be_named_and_must_be_held_out(registry: Registry, bob: Registry) -> None:
    train = seed_dataset(registry, "scraped", "train")
    registry.models.register("m", api_spec())
    evaluate_and_sign(registry, bob, "m@1.0.0", train)
    report = registry.models.promote("m@1.0.0", rollback_plan="x", dry_run=True)
    assert "no evaluation on an eval or holdout dataset" in report.checks[0].detail
    named = registry.models.promote("m@1.0.0", rollback_plan="x", eval=train, dry_run=True)
    assert "has role 'train', not eval or holdout" in named.checks[0].detail
    with pytest.raises(InvalidInput):
        registry.models.promote("m@1.0.0", rollback_plan="x", rollback_to="not a version!")


def test_promotion_needs_the_operator_role(registry: Registry, bob: Registry) -> None:
    registry.models.register("m", api_spec())
    with pytest.raises(MissingRole, match="operator"):
        bob.models.promote("m@1.0.0", rollback_plan="x", dry_run=True)


def test_rollback_returns_to_the_previous_holder_and_is_audited(registry: Registry, bob: Registry) -> None:
    golden = seed_dataset(registry, "golden", "holdout")
    for i, snapshot in enumerate(["gpt-4o-2024-05-13", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20"]):
        v = registry.models.register("m", api_spec(snapshot))
        evaluate_and_sign(registry, bob, v.ref, golden, accuracy=0.8 + i / 100, latency_ms=100)
        previous = None if i == 0 else f"m@1.{i - 1}.0"
        registry.models.promote(v.ref, rollback_plan="roll back", rollback_to=previous)
    with pytest.raises(MissingRole, match="operator"):
        bob.models.rollback("m")
    move = registry.models.rollback("m", reason="latency regression")
    assert (move.from_version, move.to_version, move.kind) == ("1.2.0", "1.1.0", "rollback")
    assert registry.models.get("m@production").ref == "m@1.1.0"
    event = registry.audit.log(subject="model:m")[-1]
    assert event.action == "model.rolled_back" and event.payload["reason"] == "latency regression"
    assert registry.models.rollback("m").to_version == "1.0.0"
    with pytest.raises(NotFound, match="first version put into production"):
        registry.models.rollback("m")
    kinds = [(m.kind, m.to_version) for m in registry.models.history("m")]
    assert kinds == [
        ("promote", "1.0.0"),
        ("promote", "1.1.0"),
        ("promote", "1.2.0"),
        ("rollback", "1.1.0"),
        ("rollback", "1.0.0"),
    ]
    assert registry.audit.verify().ok


def test_rollback_with_nothing_in_production_says_so(registry: Registry) -> None:
    registry.models.register("m", api_spec())
    with pytest.raises(NotFound, match="nothing has been promoted"):
        registry.models.rollback("m")


def test_evaluations_record_metrics_and_validate_them(registry: Registry) -> None:
    golden = seed_dataset(registry, "golden", "eval")
    registry.models.register("m", api_spec())
    evaluation = registry.models.eval("m", dataset=golden, metrics={"accuracy": 0.9}, note="nightly")
    data = evaluation.as_dict()
    assert (
        data["model"] == "m@1.0.0" and data["dataset_role"] == "eval" and data["metrics"] == {"accuracy": 0.9}
    )
    assert data["exact_overlap"] == {} and data["near_duplicates"]["measured"] is False
    event = registry.audit.log(subject="model:m@1.0.0")[-1]
    assert event.action == "model.evaluated" and event.payload["dataset"] == golden
    with pytest.raises(InvalidInput):
        registry.models.eval("m", dataset=golden, metrics={"accuracy": float("nan")})
    with pytest.raises(NotFound):
        registry.models.eval("m", dataset="golden@9", metrics={"accuracy": 1.0})


def test_concurrent_readers_never_see_an_alias_older_than_the_last_commit(
    registry: Registry, bob: Registry
) -> None:
    golden = seed_dataset(registry, "golden", "holdout")
    for i, snapshot in enumerate(["gpt-4o-2024-05-13", "gpt-4o-2024-08-06"]):
        v = registry.models.register("m", api_spec(snapshot))
        evaluate_and_sign(registry, bob, v.ref, golden, accuracy=0.8 + i / 100, latency_ms=100)
    registry.models.promote("m@1.0.0", rollback_plan="x")
    reads: list[tuple[float, str]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            started = time.monotonic()
            reads.append((started, registry.models.get("m@production").ref))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    registry.models.promote("m@1.1.0", rollback_plan="back", rollback_to="1.0.0")
    committed = time.monotonic()
    time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    assert {ref for started, ref in reads if started > committed} == {"m@1.1.0"}
    assert any(ref == "m@1.0.0" for _, ref in reads)

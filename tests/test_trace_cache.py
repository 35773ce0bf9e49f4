"""The trace memo: which audit events drop which entries, and that a kept answer is always the
answer a trace from scratch gives (after every kind of change that can alter it)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from charter.clock import ManualClock
from charter.errors import UserDisabled
from charter.service import trace_cache
from charter.service.prompt_validation import ValidationRun
from charter.service.registry import Registry
from charter.service.trace_cache import CHAINS, TraceMemo, touched
from tests.conftest import add_user
from tests.test_model_service import seed_dataset
from tests.test_provenance_history import candidate_key, one
from tests.test_slot_helpers import PLAN, World, traffic, world

# --- the table: what each audit event touches -------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "subject", "expected"),
    [
        ("user.roles_changed", "user:sam", {"user:sam"}),
        ("user.disabled", "user:sam", {"user:sam"}),
        ("user.enabled", "user:sam", {"user:sam"}),
        ("user.added", "user:sam", {"user:sam"}),
        ("token.created", "user:sam", {"user:sam"}),
        ("token.signin", "user:sam", {"user:sam"}),
        ("slot.created", "slot:agent", {"slot:agent"}),
        ("slot.bootstrapped", "slot:agent", {"slot:agent"}),
        ("slot.rolled_back", "slot:agent", {"slot:agent"}),
        ("release.created", "slot:agent", {"slot:agent"}),
        ("incident.reported", "slot:agent", {"slot:agent"}),
        ("rollout.start", "slot:agent", {"slot:agent"}),
        ("rollout.advance", "slot:agent", {"slot:agent"}),
        ("rollout.check", "slot:agent", {"slot:agent"}),
        ("rollout.approve", "slot:agent", {"slot:agent"}),
        ("rollout.rollback", "slot:agent", {"slot:agent"}),
        ("rollout.complete", "slot:agent", {"slot:agent", CHAINS}),
        ("model.created", "model:m", {"model:m"}),
        ("model.registered", "model:m@1.2.0", {"model:m@1.2.0", "model:m"}),
        ("model.evaluated", "model:m@1.0.0", {"model:m@1.0.0", "model:m"}),
        ("model.signed_off", "model:m@1.0.0", {"model:m@1.0.0", "model:m"}),
        ("model.promoted", "model:m@1.0.0", {"model:m@1.0.0", "model:m"}),
        ("model.rolled_back", "model:m", {"model:m"}),
        ("model.contamination_waived", "model:m@1.0.0", {"model:m@1.0.0", "model:m"}),
        ("model.reviewers_changed", "model:m", {"model:m"}),
        ("model.primary_metrics_changed", "model:m", {"model:m"}),
        ("prompt.version_added", "prompt:greet-v3", {"prompt:greet-v3", "prompt:greet"}),
        ("prompt.validated", "prompt:greet-v2", {"prompt:greet-v2", "prompt:greet"}),
        ("prompt.promoted", "prompt:greet-v2", {"prompt:greet-v2", "prompt:greet"}),
        ("prompt.rolled_back", "prompt:greet-v1", {"prompt:greet-v1", "prompt:greet"}),
        ("prompt.reverted", "prompt:greet-v1", {"prompt:greet-v1", "prompt:greet"}),
        ("prompt.metadata_changed", "prompt:greet", {"prompt:greet"}),
        ("prompt.metadata_changed", "prompt:greet-v2", {"prompt:greet-v2", "prompt:greet"}),
        ("dataset.version_added", "dataset:golden@2", {"dataset:golden@2", "dataset:golden"}),
        ("policy.applied", "policy", set()),
        ("webhook.added", "webhook:3", set()),
        ("webhook.removed", "webhook:3", set()),
        ("blobs.collected", "store", set()),
        ("ledger.checkpointed", "ledger", set()),
    ],
)
def test_each_known_event_touches_its_subjects(action: str, subject: str, expected: set[str]) -> None:
    assert touched(action, subject) == expected


@pytest.mark.parametrize(
    ("action", "subject"),
    [("store.initialised", "store"), ("something.new", "slot:agent"), ("model.evaluated", "slot:agent"),
     ("slot.created", "model:m"), ("user.added", "slot:agent")],
)  # fmt: skip
def test_an_event_it_does_not_know_touches_everything(action: str, subject: str) -> None:
    assert touched(action, subject) is None


def test_a_prompt_named_like_a_version_is_still_caught() -> None:
    """`prompt:ask-v2` is either prompt ask-v2 or version 2 of ask: both are touched."""
    assert touched("prompt.metadata_changed", "prompt:ask-v2") == {"prompt:ask-v2", "prompt:ask"}
    assert "prompt:ask-v2" in (touched("prompt.validated", "prompt:ask-v2-v7") or ())


# --- the memo against a ledger ------------------------------------------------------------------------


class FakeLedger:
    def __init__(self) -> None:
        self.events: list[tuple[int, str, str, str]] = [(1, "h1", "store.initialised", "store")]

    def append(self, action: str, subject: str) -> None:
        sequence = len(self.events) + 1
        self.events.append((sequence, f"h{sequence}", action, subject))

    def head(self) -> tuple[int, str]:
        return self.events[-1][:2]

    def changes_from(self, sequence: int, limit: int) -> list[tuple[int, str, str, str]]:
        return [e for e in self.events if e[0] >= sequence][:limit]


def _filled(ledger: FakeLedger) -> TraceMemo:
    memo = TraceMemo()
    at = memo.catch_up(ledger, "admin")  # type: ignore[arg-type]
    memo.get("auth", lambda: (True, ["user:admin"]), at)
    memo.get("chain", lambda: ("chain", [CHAINS, "model:m", "prompt:greet"]), at)
    memo.get("periods", lambda: ("periods", ["slot:agent"]), at)
    memo.get("release", lambda: ("release", []), at)
    return memo


def _kept(memo: TraceMemo) -> set[str]:
    return {key for key in ("auth", "chain", "periods", "release") if key in memo}


ALL = {"auth", "chain", "periods", "release"}


@pytest.mark.parametrize(
    ("action", "subject", "kept"),
    [
        ("policy.applied", "policy", ALL),
        ("user.roles_changed", "user:sam", ALL),
        ("user.roles_changed", "user:admin", ALL - {"auth"}),
        ("model.evaluated", "model:m@1.0.0", ALL - {"chain"}),
        ("model.evaluated", "model:other@1.0.0", ALL),
        ("prompt.validated", "prompt:greet-v9", ALL - {"chain"}),
        ("rollout.advance", "slot:agent", ALL - {"periods"}),
        ("rollout.advance", "slot:other", ALL),
        ("rollout.complete", "slot:other", ALL - {"chain"}),
        ("something.new", "store", set()),
    ],
)
def test_catching_up_drops_only_what_the_new_events_touch(action: str, subject: str, kept: set[str]) -> None:
    ledger = FakeLedger()
    memo = _filled(ledger)
    ledger.append(action, subject)
    memo.catch_up(ledger, "admin")  # type: ignore[arg-type]
    assert _kept(memo) == kept
    assert memo.head == ledger.head()


def test_more_events_than_the_gap_drop_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace_cache, "GAP", 3)
    ledger = FakeLedger()
    memo = _filled(ledger)
    for _ in range(3):
        ledger.append("policy.applied", "policy")
    memo.catch_up(ledger, "admin")  # type: ignore[arg-type]
    assert _kept(memo) == ALL  # three events: read one by one
    for _ in range(4):
        ledger.append("policy.applied", "policy")
    memo.catch_up(ledger, "admin")  # type: ignore[arg-type]
    assert _kept(memo) == set() and memo.head == ledger.head()


def test_another_actor_or_a_ledger_not_as_it_was_drops_everything() -> None:
    ledger = FakeLedger()
    memo = _filled(ledger)
    memo.catch_up(ledger, "olga")  # type: ignore[arg-type]
    assert _kept(memo) == set()
    memo = _filled(ledger)
    ledger.events[-1] = (1, "another store", "store.initialised", "store")
    memo.catch_up(ledger, "admin")  # type: ignore[arg-type]
    assert _kept(memo) == set() and memo.head == (1, "another store")


def test_an_entry_without_tags_is_computed_but_not_kept() -> None:
    ledger = FakeLedger()
    memo = _filled(ledger)
    calls = []
    for _ in range(2):
        memo.get("none", lambda: (calls.append(1), None), ledger.head())
    assert len(calls) == 2 and "none" not in memo


def test_an_entry_read_before_the_memo_moved_on_is_not_kept() -> None:
    """Two traces at once (the server shares a user's registry between threads): the one that
    caught up to an older head must not leave what it read behind."""
    ledger = FakeLedger()
    memo = _filled(ledger)
    older = memo.head
    assert older is not None
    ledger.append("model.evaluated", "model:m@1.0.0")
    memo.catch_up(ledger, "admin")  # type: ignore[arg-type]  # the other thread's trace
    assert memo.get("chain", lambda: ("older", ["model:m"]), older) == "older"
    assert "chain" not in memo
    memo.get("chain", lambda: ("read at the head", ["model:m"]), ledger.head())
    assert "chain" in memo


# --- on a real store: a kept answer is the answer from scratch --------------------------------------


def _same(w: World, *txn_ids: str) -> list[dict[str, Any]]:
    """Each trace through the admin's memo, checked against a trace from scratch."""
    out = []
    for txn_id in txn_ids:
        kept = w.admin.trace(txn_id).as_dict()
        assert kept == w.admin.as_user("admin").trace(txn_id).as_dict()
        out.append(kept)
    return out


def _memo(w: World) -> TraceMemo:
    return w.admin.provenance._memo


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock)


def test_every_change_a_trace_shows_is_seen_and_nothing_else_is_dropped(
    w: World, tmp_path: Path, clock: ManualClock
) -> None:
    base = one(w.sam, "alice", quality=0.8)
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 100)
    clock.advance(timedelta(hours=1))
    w.olga.rollouts.advance("agent")  # → canary
    served = one(w.sam, candidate_key(w.sam), quality=0.81)  # served by the candidate
    _same(w, base, served)
    with w.admin.store.read() as tx:
        production, candidate = (tx.slots.release_by_digest(d) for d in (w.production, w.candidate))
    assert production is not None and candidate is not None

    def kept(*keys: Any) -> bool:
        with w.admin.store.read() as tx:  # what the next trace would find
            _memo(w).catch_up(tx.ledger, "admin")
        return all(k in _memo(w) for k in keys)

    w.admin.policies.apply({"drift": {"input_sample_rate": 0.5}})  # touches nothing a trace shows
    assert kept(("chain", production.id), ("chain", candidate.id), ("periods", production.slot_id))
    _same(w, base, served)

    golden = seed_dataset(w.admin, "golden2", "holdout")
    w.admin.models.eval("m@1.1.0", dataset=golden, metrics={"accuracy": 0.93})  # model.evaluated
    assert kept(("periods", production.slot_id)) and not kept(("chain", candidate.id))
    _, after = _same(w, base, served)
    assert [e["dataset"] for e in after["model"]["evaluations"]] == ["golden@1", "golden2@1"]

    add_user(w.admin, "rhea", "reviewer").models.signoff("m@1.1.0", note="again")  # model.signed_off
    _, after = _same(w, base, served)
    assert after["model"]["signoffs"][-1]["note"] == "again"

    sample = seed_dataset(w.admin, "sample2", "production-sample")
    w.admin.prompts.record_validation(  # prompt.validated
        "greet-v2", sample=sample, run=ValidationRun(10, 9, (), 0.1, {"kind": "fake"})
    )
    _, after = _same(w, base, served)
    assert after["prompts"][0]["latest_validation"]["sample"] == "sample2@1"

    w.olga.rollouts.pause("agent")  # rollout.pause: the slot's rollouts and periods
    assert kept(("chain", production.id), ("chain", candidate.id))
    assert not kept(("periods", production.slot_id))
    _, after = _same(w, base, served)
    assert after["rollout"]["status_now"] == "paused in canary"
    w.olga.rollouts.resume("agent")

    traffic(w.sam, "agent", 4000, seed=2)
    clock.advance(timedelta(hours=2))
    w.olga.rollouts.advance("agent")  # → half
    traffic(w.sam, "agent", 600, seed=3)
    for item in ("rollback-tested", "oncall-briefed"):
        w.olga.rollouts.check("agent", item=item)  # rollout.check
    _, after = _same(w, base, served)
    assert [c["item"] for c in after["rollout"]["checklist"]] == ["rollback-tested", "oncall-briefed"]
    assert after["model"]["production_metrics"] == [] and after["model"]["promotions"] == []
    clock.advance(timedelta(hours=1))
    w.olga.rollouts.advance("agent")  # rollout.complete: production metrics, promotion, periods
    _, after = _same(w, base, served)
    assert after["model"]["production_metrics"] and after["model"]["promotions"]
    assert after["rollout"]["status_now"] == "production"
    later = one(w.sam, "bob", quality=0.9)
    assert _same(w, later)[0]["production_at_time"] == w.candidate

    clock.advance(timedelta(minutes=5))
    w.olga.slots.rollback("agent", reason="complaints")  # slot.rolled_back (and the registries')
    base_after, _, _ = _same(w, base, served, later)
    assert base_after["production_at_time"] == w.production

    w.admin.prompts.promote("greet-v1", to="development")  # prompt.promoted: dropped, same answer
    assert not kept(("chain", production.id))
    _same(w, base, served)


def test_a_role_change_of_the_actor_is_seen_at_once(w: World) -> None:
    txn = one(w.sam, "alice", quality=0.8)
    w.olga.trace(txn)
    w.admin.users.disable("sam")  # another user: the actor's authorisation is kept
    assert ("authorised",) in w.olga.provenance._memo
    w.admin.users.disable("olga")
    with pytest.raises(UserDisabled):
        w.olga.trace(txn)
    w.admin.users.enable("olga")
    assert w.olga.trace(txn).as_dict() == w.admin.trace(txn).as_dict()

"""Environments: ordered promotion, the production gate, rollback, history — and the same rules
under a hypothesis state machine against the real service."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from charter.errors import (
    EnvironmentSkipped,
    InvalidInput,
    MissingRole,
    NothingToRollBack,
    PolicyViolation,
    ValidationMissing,
)
from charter.service.prompt_validation import ValidationRun
from charter.service.registry import Registry
from tests.conftest import add_user
from tests.test_prompt_helpers import SQLITE_ONLY, allow_small_samples, register_model, sample, sync_one

ENVIRONMENTS = ("development", "staging", "production")


@pytest.fixture
def reg(registry: Registry) -> Registry:
    register_model(registry)
    allow_small_samples(registry)
    return registry


def _run(size: int, passed: int) -> ValidationRun:
    return ValidationRun(size, passed, (), 0.1, {"kind": "callable", "name": "tests:fake"})


def _versions(reg: Registry, folder: Path, count: int) -> list[str]:
    return [sync_one(reg, folder, template=f"Hello {{{{ who }}}} #{i}") for i in range(count)]


def _head(reg: Registry) -> int:
    return reg.audit.log()[-1].sequence


def test_promotion_goes_through_every_environment_in_order(reg: Registry, tmp_path: Path) -> None:
    [v1] = _versions(reg, tmp_path / "p", 1)
    ds = sample(reg, tmp_path / "data", "s", [{"who": f"n{i}"} for i in range(5)])
    head = _head(reg)
    with pytest.raises(EnvironmentSkipped, match="promote it to development first"):
        reg.prompts.promote(v1, to="staging")
    assert _head(reg) == head
    reg.prompts.promote(v1, to="development")
    reg.prompts.promote(v1, to="staging")
    with pytest.raises(ValidationMissing, match="no staging validation") as caught:
        reg.prompts.promote(v1, to="production")
    assert "charter prompt validate greet-v1" in caught.value.message
    reg.prompts.record_validation(v1, sample=ds, run=_run(5, 5))
    result = reg.prompts.promote(v1, to="production", reason="launch")
    assert result.moved and result.validation is not None and result.validation.pass_rate == 1.0
    event = reg.audit.log(subject="prompt:greet-v1")[-1]
    assert event.action == "prompt.promoted" and event.payload["environment"] == "production"
    assert event.evidence["validation"]["sample"] == ds
    assert reg.prompts.get("greet@production").ref == v1
    again = reg.prompts.promote(v1, to="production")
    assert not again.moved


@SQLITE_ONLY
def test_production_needs_the_latest_validation_to_pass_the_policy_in_force(
    reg: Registry, tmp_path: Path
) -> None:
    [v1] = _versions(reg, tmp_path / "p", 1)
    ds = sample(reg, tmp_path / "data", "s", [{"who": f"n{i}"} for i in range(5)])
    reg.prompts.promote(v1, to="development")
    reg.prompts.promote(v1, to="staging")
    failed = reg.prompts.record_validation(v1, sample=ds, run=_run(5, 3))
    assert not failed.passed
    with pytest.raises(ValidationMissing, match=r"pass rate 60.0% < 80%"):
        reg.prompts.promote(v1, to="production")
    reg.prompts.record_validation(v1, sample=ds, run=_run(5, 5))
    reg.policies.apply({"validation": {"min_samples": 10, "min_pass_rate": 0.8}})
    with pytest.raises(ValidationMissing, match="5 rows < 10"):
        reg.prompts.promote(v1, to="production")


@SQLITE_ONLY
def test_a_validation_of_another_version_does_not_count(reg: Registry, tmp_path: Path) -> None:
    v1, v2 = _versions(reg, tmp_path / "p", 2)
    ds = sample(reg, tmp_path / "data", "s", [{"who": f"n{i}"} for i in range(5)])
    reg.prompts.record_validation(v1, sample=ds, run=_run(5, 5))
    reg.prompts.promote(v2, to="development")
    reg.prompts.promote(v2, to="staging")
    with pytest.raises(ValidationMissing):
        reg.prompts.promote(v2, to="production")


def test_rollback_returns_to_the_previous_holder_and_history_shows_every_move(
    reg: Registry, tmp_path: Path
) -> None:
    v1, v2, v3 = _versions(reg, tmp_path / "p", 3)
    for v in (v1, v2, v3):
        reg.prompts.promote(v, to="development")
    back = reg.prompts.rollback("greet", environment="development", reason="v3 is rude")
    assert back.ref == v2 and back.move is not None and back.move.from_ref == v3
    assert reg.prompts.get("greet@development").ref == v2
    assert reg.prompts.rollback("greet", environment="development").ref == v1
    head = _head(reg)
    with pytest.raises(NothingToRollBack, match="development holds greet-v1"):
        reg.prompts.rollback("greet", environment="development")
    assert _head(reg) == head
    moves = reg.prompts.history("greet", environment="development")
    assert [(m.kind, m.from_ref, m.to_ref) for m in moves] == [
        ("promote", None, v1),
        ("promote", v1, v2),
        ("promote", v2, v3),
        ("rollback", v3, v2),
        ("rollback", v2, v1),
    ]
    assert moves[3].reason == "v3 is rude"
    assert [m.audit_sequence is not None for m in moves] == [True] * 5
    assert reg.prompts.history("greet", environment="staging") == []
    assert reg.audit.verify().ok


@SQLITE_ONLY
def test_the_order_comes_from_the_policy(reg: Registry, tmp_path: Path) -> None:
    reg.policies.apply({"environments": {"order": ["dev", "qa", "production"]}})
    [v1] = _versions(reg, tmp_path / "p", 1)
    with pytest.raises(InvalidInput, match="dev → qa → production"):
        reg.prompts.promote(v1, to="staging")
    reg.prompts.promote(v1, to="dev")
    with pytest.raises(EnvironmentSkipped):
        reg.prompts.promote(v1, to="production")
    reg.prompts.promote(v1, to="qa")
    with pytest.raises(ValidationMissing):
        reg.prompts.promote(v1, to="production")


@SQLITE_ONLY
def test_authors_move_pre_production_and_operators_move_production(reg: Registry, tmp_path: Path) -> None:
    v1, v2 = _versions(reg, tmp_path / "p", 2)
    ds = sample(reg, tmp_path / "data", "s", [{"who": f"n{i}"} for i in range(5)])
    author = add_user(reg, "ann", "author")
    operator = add_user(reg, "otto", "operator")
    viewer = add_user(reg, "vera", "viewer")
    with pytest.raises(MissingRole, match="author"):
        viewer.prompts.promote(v1, to="development")
    with pytest.raises(MissingRole, match="author"):
        operator.prompts.promote(v1, to="development")
    for v in (v1, v2):
        author.prompts.promote(v, to="development")
        author.prompts.promote(v, to="staging")
        author.prompts.record_validation(v, sample=ds, run=_run(5, 5))
    head = _head(reg)
    with pytest.raises(MissingRole, match="operator"):
        author.prompts.promote(v1, to="production")
    with pytest.raises(PolicyViolation, match="flags may only tighten"):
        author.prompts.record_validation(v1, sample=ds, run=_run(5, 5), min_pass_rate=0.5)
    assert _head(reg) == head
    operator.prompts.promote(v2, to="production")
    # rolling back staging is the author's (or an operator's); production is the operator's
    author.prompts.rollback("greet", environment="staging")
    with pytest.raises(NothingToRollBack):
        operator.prompts.rollback("greet", environment="production")
    with pytest.raises(MissingRole, match="operator"):
        author.prompts.rollback("greet", environment="production")
    assert [m.actor for m in reg.prompts.history("greet", environment="production")] == ["otto"]


# --- the same rules, explored by hypothesis ----------------------------------------------------------


class EnvironmentMachine(RuleBasedStateMachine):
    """Random promotions and rollbacks against the real service, checked against a model: each
    environment's pointer is the top of a stack of holders; promotions must come from the previous
    environment; production needs a passing validation."""

    names = itertools.count()

    def __init__(self, registry: Registry, folder: Path, dataset: str) -> None:
        super().__init__()
        self.reg, self.folder, self.dataset = registry, folder, dataset
        self.name = f"machine{next(self.names)}"
        self.stacks: dict[str, list[int]] = {e: [] for e in ENVIRONMENTS}
        self.validated: set[int] = set()

    @initialize()
    def three_versions(self) -> None:
        for i in range(3):
            sync_one(self.reg, self.folder / self.name, self.name, f"Hello {{{{ who }}}} {i}")

    def _holder(self, env: str) -> int | None:
        stack = self.stacks[env]
        return stack[-1] if stack else None

    @rule(version=st.integers(1, 3))
    def validate(self, version: int) -> None:
        self.reg.prompts.record_validation(f"{self.name}-v{version}", sample=self.dataset, run=_run(5, 5))
        self.validated.add(version)

    @rule(version=st.integers(1, 3), env=st.sampled_from(ENVIRONMENTS))
    def promote(self, version: int, env: str) -> None:
        index = ENVIRONMENTS.index(env)
        ref = f"{self.name}-v{version}"
        if self._holder(env) == version:
            assert not self.reg.prompts.promote(ref, to=env).moved
        elif index > 0 and self._holder(ENVIRONMENTS[index - 1]) != version:
            with pytest.raises(EnvironmentSkipped):
                self.reg.prompts.promote(ref, to=env)
        elif env == "production" and version not in self.validated:
            with pytest.raises(ValidationMissing):
                self.reg.prompts.promote(ref, to=env)
        else:
            assert self.reg.prompts.promote(ref, to=env).moved
            self.stacks[env].append(version)

    @rule(env=st.sampled_from(ENVIRONMENTS))
    def rollback(self, env: str) -> None:
        stack = self.stacks[env]
        if len(stack) < 2:
            with pytest.raises(NothingToRollBack):
                self.reg.prompts.rollback(self.name, environment=env)
        else:
            assert self.reg.prompts.rollback(self.name, environment=env).ref == f"{self.name}-v{stack[-2]}"
            stack.pop()

    @invariant()
    def pointers_match_the_model(self) -> None:
        if not hasattr(self, "name"):
            return
        listed = {p.name: p.environments for p in self.reg.prompts.list()}.get(self.name, {})
        expected = {e: f"{self.name}-v{s[-1]}" for e, s in self.stacks.items() if s}
        assert {e: ref for e, ref in listed.items() if ref is not None} == expected


@SQLITE_ONLY
def test_environment_rules_hold_under_random_moves(reg: Registry, tmp_path: Path) -> None:
    dataset = sample(reg, tmp_path / "data", "s", [{"who": f"n{i}"} for i in range(5)])
    run_state_machine_as_test(
        lambda: EnvironmentMachine(reg, tmp_path / "prompts", dataset),  # type: ignore[arg-type]
        settings=settings(
            max_examples=15,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    assert reg.audit.verify().ok

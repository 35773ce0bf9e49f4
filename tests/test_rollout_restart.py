"""Restart safety: a process killed at any point of any transition leaves the rollout exactly before
or exactly after the step — never half-advanced — and the same step then succeeds.

Each transition is run once per SQL statement it issues, with the process "killed" (a
BaseException, as a signal would) just before that statement; the store is then re-opened from the
same database and must show the state from before the step, with a verifiable ledger. A last run
without a kill must show the state after it. One test kills a real subprocess with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from charter.clock import ManualClock
from charter.config import Settings
from charter.service.registry import Registry
from charter.service.setup import open_registry
from tests.test_prompt_helpers import SQLITE_ONLY
from tests.test_slot_helpers import PLAN, World, normal_metrics, traffic, world


class Killed(BaseException):
    """What a kill looks like from inside the process: nothing after it runs."""


def snapshot(reg: Registry) -> dict[str, Any]:
    """Every piece of state a transition may touch."""
    with reg.store.read() as tx:
        conn = tx.conn

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(sa.text(sql))]

        return {
            "rollouts": rows(
                "SELECT id, phase, active, revision, state, gate_report FROM rollouts ORDER BY id"
            ),
            "transitions": rows("SELECT rollout_id, revision, action FROM rollout_transitions ORDER BY id"),
            "periods": rows("SELECT slot_id, release_id, kind, ended_at FROM production_periods ORDER BY id"),
            "routing": rows("SELECT name, routing_version FROM slots ORDER BY name"),
            "aliases": rows("SELECT model_id, alias, version_id FROM model_aliases ORDER BY model_id, alias"),
            "pointers": rows(
                "SELECT prompt_id, environment, version_id FROM prompt_env_pointers ORDER BY 1, 2"
            ),
            "incidents": rows("SELECT id, severity FROM incidents ORDER BY id"),
            "metrics": rows("SELECT id FROM production_metrics ORDER BY id"),
            "head": tx.ledger.head(),
        }


@contextmanager
def kill_before_statement(reg: Registry, number: int) -> Iterator[list[int]]:
    """Raise `Killed` just before the `number`-th SQL statement of write transactions."""
    seen = [0]

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if conn.get_execution_options().get("charter_write"):
            seen[0] += 1
            if seen[0] == number:
                raise Killed(statement)

    sa.event.listen(reg.store.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(reg.store.engine, "before_cursor_execute", before)


def crash_everywhere(
    settings: Settings, clock: ManualClock, step: Callable[[Registry], Any], *, actor: str, stride: int = 1
) -> Registry:
    """Kill `step` before each of its statements in turn (re-opening the store each time), then run it."""
    reg = open_registry(settings, clock=clock, user=actor)
    before = snapshot(reg)
    number = 1
    while True:
        with kill_before_statement(reg, number) as counted:
            try:
                step(reg)
                finished = True
            except Killed:
                finished = False
        reg.close()
        reg = open_registry(settings, clock=clock, user=actor)  # the restart
        if finished:
            break
        assert snapshot(reg) == before, f"killed before statement {number}: the step was half-applied"
        assert reg.audit.verify().ok
        number += stride
    assert counted[0] > 1 and snapshot(reg) != before
    return reg


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock)


def test_every_transition_survives_a_kill_at_any_statement(
    w: World, settings: Settings, clock: ManualClock
) -> None:
    candidate, stride = w.candidate, 1 if w.admin.store.dialect == "sqlite" else 5  # PostgreSQL: every 5th

    def as_(actor: str, step: Callable[[Registry], Any]) -> None:
        crash_everywhere(settings, clock, step, actor=actor, stride=stride)

    as_("olga", lambda r: r.rollouts.start("agent", release=candidate, rollback_plan=PLAN))
    traffic(w.sam, "agent", 200)
    clock.advance(timedelta(hours=1))
    as_("olga", lambda r: r.rollouts.pause("agent"))
    as_("olga", lambda r: r.rollouts.resume("agent"))
    as_("olga", lambda r: r.rollouts.advance("agent"))  # into real traffic: the promotion gate runs too
    traffic(w.sam, "agent", 4000, seed=2)
    clock.advance(timedelta(hours=2))
    as_("olga", lambda r: r.rollouts.check("agent", item="rollback-tested"))
    as_("admin", lambda r: r.rollouts.advance("agent", override=True, reason="checked by hand"))
    traffic(w.sam, "agent", 600, seed=3)
    w.olga.rollouts.check("agent", item="oncall-briefed")
    clock.advance(timedelta(hours=1))
    as_("olga", lambda r: r.rollouts.advance("agent"))  # into production: pointers, periods, metrics
    assert w.admin.models.get("m@production").ref == "m@1.1.0"
    clock.advance(timedelta(hours=1))
    as_("olga", lambda r: r.slots.rollback("agent", reason="restart test"))
    assert w.admin.models.get("m@production").ref == "m@1.0.0"
    as_("olga", lambda r: r.rollouts.start("agent", release=candidate, rollback_plan=PLAN))
    as_("olga", lambda r: r.rollouts.incident("agent", severity="P0", release=candidate, summary="down"))
    assert w.olga.rollouts.status("agent").rollout["phase"] == "rolled_back"
    assert w.admin.audit.verify().ok


@SQLITE_ONLY
def test_the_automatic_rules_survive_a_kill_too(w: World, settings: Settings, clock: ManualClock) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 100, candidate=normal_metrics(format_ok=0.0))
    reg = crash_everywhere(settings, clock, lambda r: r.rollouts.tick(), actor="olga")
    assert reg.rollouts.status("agent").rollout["phase"] == "rolled_back"
    reg.close()
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    clock.advance(timedelta(days=1))
    reg = crash_everywhere(settings, clock, lambda r: r.rollouts.tick(), actor="olga")
    assert reg.rollouts.status("agent").transitions[-1]["action"] == "expire"
    reg.close()


@SQLITE_ONLY
def test_a_process_killed_with_sigkill_mid_advance_leaves_the_rollout_where_it_was(
    w: World, settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 200)
    clock.advance(timedelta(hours=1))
    before = snapshot(w.admin)
    script = textwrap.dedent(
        f"""
        import os, signal
        from datetime import datetime
        from charter.clock import ManualClock
        from charter.config import Settings
        from charter.service.setup import open_registry
        from charter.storage.rollouts import RolloutRepo

        original = RolloutRepo.add_transition
        def add_then_die(self, record):
            original(self, record)            # the state, the event and the transition row are written …
            os.kill(os.getpid(), signal.SIGKILL)  # … and the process dies before the commit
        RolloutRepo.add_transition = add_then_die
        settings = Settings.for_home(
            {str(settings.home)!r}, user="olga", database_url={settings.database_url!r}
        )
        clock = ManualClock(datetime.fromisoformat({clock.now().isoformat()!r}))
        open_registry(settings, clock=clock).rollouts.advance("agent")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, env={**os.environ}
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    reg = open_registry(settings, clock=clock, user="olga")
    assert snapshot(reg) == before and reg.audit.verify().ok
    assert reg.rollouts.advance("agent").rollout["stage"] == "canary"
    reg.close()

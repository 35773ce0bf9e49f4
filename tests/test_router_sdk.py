"""The in-process router through the SDK: decisions, the cached table, refresh, staleness."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from charter.clock import ManualClock
from charter.domain.routing import bucket
from charter.errors import StoreUnavailable
from charter.service.registry import Registry
from charter.service.router import Router
from tests.conftest import _pg_admin_conninfo
from tests.test_prompt_helpers import SQLITE_ONLY
from tests.test_slot_helpers import PLAN, World, traffic, world

POSTGRES_ONLY = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock)


class FakeTimer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def counting(reg: Registry) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(reg.store.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(reg.store.engine, "before_cursor_execute", before)


@contextmanager
def postgres_down(reg: Registry) -> Iterator[None]:
    """A real outage: the database refuses connections and every open one is terminated."""
    name = reg.store.engine.url.database
    with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    try:
        yield
    finally:
        with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_a_decision_carries_the_release_ready_to_serve(w: World) -> None:
    decision = w.sam.route("agent", "alice")
    assert decision.release.digest == w.production and decision.arm.value == "baseline"
    assert (
        decision.release.model.ref == "m@1.0.0" and decision.release.model.spec.serving["temperature"] == 0.2
    )
    assert decision.release.prompt("greet").render(who="Ada") == "Hello Ada #1"
    assert (decision.stale, decision.shadow, decision.rollout, decision.table_version) == (
        False,
        None,
        None,
        1,
    )
    assert decision.as_dict()["prompts"] == ["greet-v1"]


def test_decisions_are_deterministic_across_processes_and_follow_the_formula(w: World, settings: Any) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    traffic(w.sam, "agent", 200)
    w.clock.advance(timedelta(hours=1))
    step = w.olga.rollouts.advance("agent")
    salt = step.rollout["salt"]
    keys = [f"customer-{i}" for i in range(300)]
    here = [w.sam.route("agent", k).arm.value for k in keys]
    assert here == ["candidate" if bucket("agent", salt, k) < 500 else "baseline" for k in keys]
    script = (
        "import sys\nfrom charter.config import Settings\nfrom charter.service.setup import open_registry\n"
        f"reg = open_registry(Settings.for_home({str(settings.home)!r}, user='sam', "
        f"database_url={settings.database_url!r}))\n"
        f"print(','.join(reg.route('agent', k).arm.value for k in {keys!r}))\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, env={**os.environ}
    )
    assert other.stdout.strip().split(",") == here, other.stderr


@SQLITE_ONLY
def test_requests_without_a_key_get_a_random_bucket(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    w.admin.rollouts.advance("agent", override=True, reason="skip shadow for this test")
    arms = [w.sam.route("agent").arm.value for _ in range(4000)]
    assert 120 < arms.count("candidate") < 290  # 5 %


def test_routing_reads_nothing_while_the_table_is_cached(w: World) -> None:
    timer = FakeTimer()
    router = w.sam._router = Router(w.sam, refresh_interval=1.0, timer=timer)
    router.route("agent", "warm-up")
    with counting(w.sam) as statements:
        for i in range(2000):
            router.route("agent", f"k{i}")
    assert statements == []  # no query: the table, the releases and every decision are cached
    # another process (another registry) starts a rollout: seen after the refresh interval
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    assert router.route("agent", "alice").shadow is None and router.route("agent", "alice").table_version == 1
    timer.now += 1.5
    decision = router.route("agent", "alice")
    assert decision.shadow is not None and decision.table_version == 2 and decision.stage == "shadow"
    # an unrelated change moves the ledger head but not the table: it is kept as is
    w.admin.models.set_primary_metrics("m", {"accuracy": "higher", "latency": "lower"})
    timer.now += 1.5
    assert router.route("agent", "alice") is decision


def test_changes_made_through_the_same_registry_are_seen_at_once(w: World) -> None:
    w.admin.router.refresh_interval = 3600
    assert w.admin.route("agent", "bob").shadow is None
    w.admin.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    assert w.admin.route("agent", "bob").shadow is not None


@POSTGRES_ONLY
def test_an_unreachable_store_leaves_the_last_table_in_service_marked_stale(w: World) -> None:
    timer = FakeTimer()
    router = w.sam._router = Router(w.sam, refresh_interval=1.0, timer=timer)
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    fresh = router.route("agent", "alice")
    assert not fresh.stale and fresh.shadow is not None
    with postgres_down(w.sam):
        timer.now += 2
        stale = router.route("agent", "alice")
        assert stale.stale and stale.release is fresh.release and stale.shadow is fresh.shadow
        assert stale.table_version == fresh.table_version
        with pytest.raises(StoreUnavailable, match="routing table of slot other"):
            router.route("other", "alice")
    timer.now += 2
    assert not router.route("agent", "alice").stale

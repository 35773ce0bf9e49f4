"""The service reads the web UI pages through: paged catalog reads, keyset paging of the ledger, a
rollout's metric series with the bound each stage draws, the notes actions record — and how long a
page reuses a rollout's live aggregates."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from charter.api.context import ServerContext
from charter.clock import ManualClock
from charter.config import Settings
from charter.domain.criteria import CostRatio, NonInferiority, Stable, Threshold
from charter.domain.tracks import Direction
from charter.errors import InvalidInput, NotFound
from charter.service.registry import Registry
from charter.service.rollout_series import bound_for
from charter.web.session import SessionCodec
from charter.web.site import LIVE_SECONDS, Site
from tests.test_model_service import seed_dataset
from tests.test_prompt_helpers import SQLITE_ONLY, prompt_yaml, register_model, write
from tests.test_slot_helpers import MODEL_SPEC, PLAN, traffic, world


def test_model_versions_are_paged_highest_first_with_a_total(registry: Registry) -> None:
    for i in range(7):
        registry.models.register("m", {**MODEL_SPEC, "serving": {"temperature": i / 10}})
    registry.models.register("a-model", MODEL_SPEC)
    first = registry.catalog.model_versions("m", offset=0, limit=3)
    assert [str(v.version) for v in first.items] == ["1.0.6", "1.0.5", "1.0.4"]
    assert first.total == 7 and first.has_next and not first.has_previous
    last = registry.catalog.model_versions("m", offset=6, limit=3)
    assert [str(v.version) for v in last.items] == ["1.0.0"] and not last.has_next and last.has_previous
    models = registry.catalog.models(limit=1)
    assert [(r.name, r.versions, r.latest) for r in models.items] == [("a-model", 1, "1.0.0")]
    assert models.total == 2
    assert registry.catalog.models(offset=1, limit=5).items[0].versions == 7
    with pytest.raises(NotFound):
        registry.catalog.model_versions("nope")
    with pytest.raises(InvalidInput):
        registry.catalog.models(limit=0)
    with pytest.raises(InvalidInput):
        registry.catalog.models(offset=-1)


def test_prompt_and_dataset_versions_are_paged_newest_first(registry: Registry, tmp_path: Path) -> None:
    register_model(registry)
    folder = tmp_path / "prompts"
    for i in range(5):
        write(folder, "greet.prompt.yaml", prompt_yaml("greet", f"Hello {{{{ who }}}} {i}"))
        registry.prompts.sync(folder)
    registry.prompts.promote("greet-v2", to="development")
    page = registry.catalog.prompt_versions("greet", offset=1, limit=2)
    assert [e.version.ref for e in page.items] == ["greet-v4", "greet-v3"] and page.total == 5
    assert registry.catalog.prompt_versions("greet", offset=3, limit=2).items[0].environments == (
        "development",
    )
    summary = registry.catalog.prompts().items[0]
    assert (summary.latest, summary.versions, summary.environments["development"]) == (
        "greet-v5",
        5,
        "greet-v2",
    )
    for _ in range(4):
        seed_dataset(registry, "golden", "holdout")
    versions = registry.catalog.dataset_versions("golden", limit=3)
    assert [d.version for d in versions.items] == [4, 3, 2] and versions.total == 4
    assert [d.ref for d in registry.catalog.datasets().items] == ["golden@4"]


def test_the_ledger_pages_by_sequence_with_filters(registry: Registry) -> None:
    for name in ("ann", "bob", "cid", "dan", "eve"):
        registry.users.add(name, ["viewer"])
    head = registry.audit.page(limit=1).events[0].sequence
    page = registry.audit.page(action="user.added", limit=2)
    assert [e.subject for e in page.events] == ["user:eve", "user:dan"] and page.newer is None
    older = registry.audit.page(action="user.added", limit=2, before=page.older)
    assert [e.subject for e in older.events] == ["user:cid", "user:bob"]
    assert older.newer is not None
    back = registry.audit.page(action="user.added", limit=2, after=older.newer)
    assert [e.subject for e in back.events] == ["user:eve", "user:dan"]
    assert [e.subject for e in registry.audit.page(subject="user:a*").events] == ["user:ann"]
    assert registry.audit.page(action="user.*", actor="nobody").events == ()
    assert all(e.actor == "admin" for e in registry.audit.page(actor="admin").events)
    everything = registry.audit.page(limit=1000)
    assert len(everything.events) == head and everything.older is None


def test_bounds_follow_the_criterion_and_the_metric_direction() -> None:
    ni = NonInferiority("quality", margin=0.02)
    assert bound_for((ni,), "quality", Direction.HIGHER, 0.8).value == pytest.approx(0.784)  # type: ignore[union-attr]
    assert bound_for((ni,), "quality", Direction.LOWER, 0.8).value == pytest.approx(0.816)  # type: ignore[union-attr]
    assert bound_for((ni,), "quality", Direction.HIGHER, None) is None
    assert bound_for((ni,), "cost", Direction.LOWER, 0.8) is None
    assert bound_for((Threshold("ok", min=0.99),), "ok", Direction.HIGHER, None).value == 0.99  # type: ignore[union-attr]
    ratio = bound_for((CostRatio("cost", max=1.1),), "cost", Direction.LOWER, 0.01)
    assert ratio is not None and ratio.value == pytest.approx(0.011) and ratio.kind == "cost_ratio"
    stable = bound_for((Stable(0.05),), "quality", Direction.HIGHER, 1.0)
    assert stable is not None and stable.value == pytest.approx(0.95)


def test_a_rollout_series_counts_every_record_once_and_draws_each_stages_bound(
    registry: Registry, tmp_path: Path, clock: ManualClock
) -> None:
    w = world(registry, tmp_path, clock)
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    arms = traffic(w.sam, "agent", 120, seed=1, spread=timedelta(minutes=50), clock=clock)
    clock.advance(timedelta(minutes=15))
    w.olga.rollouts.advance("agent", note="shadow looked clean")
    arms2 = traffic(w.sam, "agent", 600, seed=2, spread=timedelta(minutes=40), clock=clock)
    series = w.admin.rollouts.series("agent")
    assert [s.stage for s in series.stages] == ["shadow", "canary"]
    quality = next(m for m in series.metrics if m.metric == "quality")
    assert {m.metric for m in series.metrics} == {"quality", "format_ok", "cost"}
    baseline = sum(p.baseline.count for p in quality.points if p.baseline)
    candidate = sum(p.candidate.count for p in quality.points if p.candidate)
    assert baseline == arms["baseline"] + arms2["baseline"]
    assert candidate == arms["shadow"] + arms2.get("candidate", 0) + arms2.get("shadow", 0)
    canary = [(p.bound, p.baseline) for p in quality.points if p.stage == "canary" and p.baseline is not None]
    assert canary and all(b is not None and b.value == pytest.approx(m.mean * 0.98) for b, m in canary)
    assert all(p.bound is None for p in quality.points if p.stage == "shadow")
    fmt = next(m for m in series.metrics if m.metric == "format_ok")
    assert {p.bound.value for p in fmt.points if p.stage == "shadow" and p.bound} == {0.9}
    event = w.admin.audit.page(action="rollout.advance", limit=1).events[0]
    assert event.actor == "olga" and event.payload["note"] == "shadow looked clean"
    assert series.policy["name"] == "quick"


def test_notes_go_to_the_audit_event_and_an_empty_note_adds_nothing(
    registry: Registry, tmp_path: Path, clock: ManualClock
) -> None:
    w = world(registry, tmp_path, clock)
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    w.olga.rollouts.pause("agent", reason="waiting for the on-call")
    w.olga.rollouts.resume("agent", note="on-call is here")
    w.olga.rollouts.check("agent", item="rollback-tested", note="drill done")
    w.olga.rollouts.pause("agent")
    w.olga.rollouts.resume("agent")
    events = w.admin.audit.page(subject="slot:agent", limit=4).events[::-1]
    assert [e.action for e in events] == [
        "rollout.resume",
        "rollout.check",
        "rollout.pause",
        "rollout.resume",
    ]
    assert events[0].payload["note"] == "on-call is here" and events[1].payload["note"] == "drill done"
    assert "note" not in events[3].payload
    with pytest.raises(NotFound):
        registry.rollouts.series("nope")


@SQLITE_ONLY
def test_pages_reuse_a_live_aggregate_until_the_ledger_moves_or_the_clock_passes_30_seconds(
    registry: Registry, settings: Settings, clock: ManualClock
) -> None:
    site = Site(ServerContext(settings, registry), SessionCodec())
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert site.live(registry, ("status", "agent"), compute) == 1
    assert site.live(registry, ("status", "agent"), compute) == 1
    assert site.live(registry, ("series", "agent"), compute) == 2  # another key
    registry.users.add("ann", ["viewer"])  # the ledger moves
    assert site.live(registry, ("status", "agent"), compute) == 3
    clock.advance(timedelta(seconds=LIVE_SECONDS))
    assert site.live(registry, ("status", "agent"), compute) == 4

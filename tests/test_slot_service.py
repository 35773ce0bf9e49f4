"""Slots, releases and bootstrap through the service, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from charter.clock import ManualClock
from charter.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidReference,
    InvalidSpec,
    MissingRole,
    NotFound,
    Refused,
)
from charter.service.registry import Registry
from tests.conftest import add_user
from tests.test_slot_helpers import QUICK_TRACK, World, world


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock)


def ledger_length(registry: Registry) -> int:
    return len(registry.audit.log())


def test_a_slot_takes_a_named_policy_or_a_file(registry: Registry, tmp_path: Path) -> None:
    slot = registry.slots.create("plain")
    assert (slot.policy, slot.policy_source, slot.production, slot.rollout) == (
        "default",
        "tracks",
        None,
        None,
    )
    path = tmp_path / "track.yaml"
    path.write_text(yaml.safe_dump(QUICK_TRACK))
    own = registry.slots.create("careful", policy=str(path))
    assert (own.policy, own.policy_source) == ("quick", "file")
    registry.policies.apply({"tracks": {"fast": {**QUICK_TRACK, "name": "fast"}}})
    assert registry.slots.create("fast-one", policy="fast").policy == "fast"
    with pytest.raises(NotFound, match="policies in force: default, fast"):
        registry.slots.create("other", policy="nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstages: []\n")
    with pytest.raises(InvalidSpec):
        registry.slots.create("other", policy=str(bad))
    with pytest.raises(AlreadyExists):
        registry.slots.create("plain")
    event = registry.audit.log(subject="slot:careful")[-1]
    assert event.action == "slot.created" and event.payload["policy_document"]["name"] == "quick"
    assert [s.name for s in registry.slots.list()] == ["careful", "fast-one", "plain"]


def test_releases_are_content_addressed_and_named_by_a_unique_prefix(w: World) -> None:
    reg = w.admin
    again = reg.releases.create("agent", model="m@1.1.0", prompts=["greet-v2"], params={"max_tokens": 600})
    assert again.digest == w.candidate  # the same bundle is the same release
    other = reg.releases.create("agent", model="m@1.1.0", prompts=["greet@2"], params={"max_tokens": 601})
    assert other.digest != w.candidate
    assert reg.releases.get(w.candidate[:8]).digest == w.candidate
    with pytest.raises(InvalidReference, match="at least 8"):
        reg.releases.get(w.candidate[:7])
    with pytest.raises(NotFound):
        reg.releases.get("00000000")
    assert [r.digest for r in reg.releases.list("agent")] == [w.production, w.candidate, other.digest]
    with pytest.raises(InvalidInput, match="one version per prompt"):
        reg.releases.create("agent", model="m@1.0.0", prompts=["greet-v1", "greet-v2"])
    with pytest.raises(NotFound):
        reg.releases.create("agent", model="m@9.9.9")
    with pytest.raises(NotFound):
        reg.releases.create("nowhere", model="m@1.0.0")


def test_an_alias_is_pinned_to_the_version_it_names_now(w: World) -> None:
    w.admin.models.promote("m@1.0.0", rollback_plan="none needed")
    release = w.admin.releases.create("agent", model="m@production", app_version="abc123")
    assert release.model == "m@1.0.0" and release.app_version == "abc123"


def test_parameter_precedence_is_release_then_prompt_then_model_with_sources(w: World) -> None:
    release = w.admin.releases.get(w.candidate)
    greet = release.effective_params["greet"]
    assert greet["max_tokens"] == {"value": 600, "source": "release"}
    assert greet["temperature"] == {"value": 0.5, "source": "prompt:greet-v2"}
    default = release.effective_params["-"]
    assert default["temperature"] == {"value": 0.2, "source": "model:m@1.1.0"}
    served = w.sam.route("agent", "k").release
    assert served.digest == w.production  # no rollout yet: production serves everything
    assert served.params("greet") == {"max_tokens": 400, "temperature": 0.5}
    assert served.params() == {"max_tokens": 400, "temperature": 0.2}
    assert served.prompt("greet").render(who="Ada") == "Hello Ada #1"


def test_a_retrieval_index_is_part_of_the_release(w: World) -> None:
    from tests.test_model_service import seed_dataset

    index = seed_dataset(w.admin, "kb", "production-sample")
    release = w.admin.releases.create("agent", model="m@1.0.0", prompts=["greet-v1"], retrieval_index=index)
    assert release.retrieval_index == index and release.digest != w.production
    assert w.admin.audit.log(subject="slot:agent")[-1].payload["retrieval_index"]["ref"] == index


def test_bootstrap_sets_the_first_production_release_only(w: World) -> None:
    slot = w.admin.slots.show("agent")
    assert slot.production == w.production and slot.routing_version == 1
    before = ledger_length(w.admin)
    with pytest.raises(Refused, match="bootstrap sets only the first one"):
        w.olga.slots.bootstrap("agent", release=w.candidate)
    assert ledger_length(w.admin) == before
    event = w.admin.audit.log(subject="slot:agent", newest_first=True, limit=1)[0]
    assert event.action == "slot.bootstrapped" and event.actor == "olga"
    # bootstrap claims no registry pointer: the first release never passed the promotion gate
    with pytest.raises(NotFound):
        w.admin.models.get("m@production")


def test_roles_are_enforced_and_refusals_write_nothing(w: World) -> None:
    viewer = add_user(w.admin, "vic", "viewer")
    before = ledger_length(w.admin)
    with pytest.raises(MissingRole, match="operator"):
        viewer.slots.create("x")
    with pytest.raises(MissingRole, match="author"):
        w.olga.releases.create("agent", model="m@1.0.0")
    with pytest.raises(MissingRole, match="operator"):
        w.sam.rollouts.start("agent", release=w.candidate, rollback_plan="x")
    with pytest.raises(MissingRole, match="service"):
        viewer.route("agent", "k")
    assert ledger_length(w.admin) == before
    assert viewer.slots.show("agent").production == w.production


def test_nothing_routes_before_bootstrap(registry: Registry) -> None:
    registry.slots.create("empty")
    with pytest.raises(NotFound, match="slot bootstrap empty"):
        registry.route("empty", "k")
    with pytest.raises(NotFound, match="slot 'nope'"):
        registry.route("nope", "k")

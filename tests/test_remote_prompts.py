"""`reg.prompts.get` against a server: the embedded SDK's TTL cache and fallback, over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.client.prompts import RemotePrompts
from charter.client.remote import RemoteRegistry
from charter.clock import ManualClock
from charter.errors import InvalidInput, StoreUnavailable
from charter.service.prompt_version import PromptVersion
from charter.service.registry import Registry
from tests.server_fixtures import live_server  # noqa: F401  (a fixture)
from tests.test_prompt_helpers import register_model, sync_one
from tests.test_remote_routing import FakeTimer, Switch
from tests.test_slot_helpers import world


@pytest.fixture
def remote(registry: Registry, live_server: tuple[str, str]) -> tuple[RemoteRegistry, Switch, FakeTimer]:  # noqa: F811
    url, token = live_server
    switch, timer = Switch(), FakeTimer()
    client = RemoteRegistry(url, token, transport=switch)
    assert isinstance(client.prompts, RemotePrompts)
    client.prompts = RemotePrompts(client.prompts._operations, cache_ttl=10, timer=timer)
    return client, switch, timer


def _greet_in_development(registry: Registry, tmp_path: Path) -> None:
    register_model(registry)
    sync_one(registry, tmp_path / "p")
    registry.prompts.promote("greet-v1", to="development")


def _gets(switch: Switch) -> int:
    return sum(1 for method, path, _ in switch.requests if method == "GET" and "/prompt-versions/" in path)


def test_get_is_cached_for_the_ttl_then_fetched_again(
    registry: Registry, tmp_path: Path, remote: tuple[RemoteRegistry, Switch, FakeTimer]
) -> None:
    client, switch, timer = remote
    _greet_in_development(registry, tmp_path)
    first = client.prompts.get("greet@development")
    assert isinstance(first, PromptVersion) and first.ref == "greet-v1" and not first.fallback
    assert first.render(who="Ada") == "Hello Ada!"
    assert client.prompts.get("greet@development") is first and _gets(switch) == 1  # within the TTL
    sync_one(registry, tmp_path / "p", template="Hi {{ who }}!")
    registry.prompts.promote("greet-v2", to="development")
    assert client.prompts.get("greet@development").ref == "greet-v1"  # still within the TTL
    timer.now = 11
    assert client.prompts.get("greet@development").ref == "greet-v2" and _gets(switch) == 2
    client.prompts.configure_cache(ttl=0)
    client.prompts.get("greet@development")
    client.prompts.get("greet@development")
    assert _gets(switch) == 4  # no cache: asked every time
    with pytest.raises(InvalidInput, match="TTL"):
        client.prompts.configure_cache(ttl=-1)
    versions = client.prompts.versions("greet")  # every other method: the plain remote operation
    assert [e.version.ref for e in versions] == ["greet-v1", "greet-v2"]


def test_an_unreachable_server_serves_the_last_known_version_marked_as_fallback(
    registry: Registry, tmp_path: Path, remote: tuple[RemoteRegistry, Switch, FakeTimer]
) -> None:
    client, switch, timer = remote
    _greet_in_development(registry, tmp_path)
    known = client.prompts.get("greet@development")
    switch.down = True
    timer.now = 60
    served = client.prompts.get("greet@development")
    assert served.fallback and served.ref == known.ref and served.environment == "development"
    assert served.render(who="Ada") == "Hello Ada!" and served.as_dict()["fallback"] is True
    with pytest.raises(StoreUnavailable, match="nothing was cached"):
        client.prompts.get("greet@staging")
    switch.down = False
    back = client.prompts.get("greet@development")
    assert not back.fallback and back.ref == "greet-v1"


def test_a_prompt_served_from_the_fallback_marks_the_request_s_record_stale(
    registry: Registry,
    tmp_path: Path,
    clock: ManualClock,
    remote: tuple[RemoteRegistry, Switch, FakeTimer],
) -> None:
    """The request's provenance shows the fallback: its transaction record is stored `stale`."""
    client, switch, timer = remote
    w = world(registry, tmp_path, clock)  # slot "agent", prompt greet in development
    assert client.prompts.get("greet@development").ref == "greet-v2"
    with w.sam.transaction("agent", key="fresh") as fresh:
        client.prompts.get("greet@development")  # from the cache: not a fallback
        fresh.record(quality=1.0)
    switch.down, timer.now = True, 60
    with w.sam.transaction("agent", key="outage") as served:
        assert client.prompts.get("greet@development").fallback
        served.record(quality=1.0)
    assert served.fallback and not fresh.fallback and not served.decision.stale
    assert client.prompts.get("greet@development").fallback  # outside a transaction: nothing to mark
    w.sam.flush()
    assert w.admin.trace(served.id).transaction["stale"] is True
    assert w.admin.trace(fresh.id).transaction["stale"] is False

"""Routing and recording against a server: decisions in process, tables refreshed with entity tags,
records sent in batches — the same decisions and records as embedded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from charter.client.remote import RemoteRegistry
from charter.client.routing import RemoteRecorder, RemoteRouter
from charter.clock import ManualClock
from charter.errors import StoreUnavailable
from charter.service.registry import Registry
from tests.server_fixtures import live_server  # noqa: F401  (a fixture)
from tests.test_slot_helpers import PLAN, World, world


class Switch(httpx.BaseTransport):
    """Real HTTP that can be cut off (an outage) and that counts what it carried."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.down = False
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused (test)", request=request)
        response = self.inner.handle_request(request)
        with self.lock:
            self.requests.append((request.method, request.url.path, response.status_code))
        return response

    def close(self) -> None:
        self.inner.close()


class FakeTimer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def w(registry: Registry, tmp_path: Path, clock: ManualClock) -> World:
    return world(registry, tmp_path, clock)


@pytest.fixture
def switch() -> Switch:
    return Switch()


@pytest.fixture
def sam(w: World, live_server: tuple[str, str], switch: Switch) -> Iterator[RemoteRegistry]:  # noqa: F811
    url, _ = live_server
    token = w.admin.tokens.create("sam").secret
    remote = RemoteRegistry(url, token, transport=switch)
    yield remote
    remote.close()


def canary(w: World) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    w.admin.rollouts.advance("agent", override=True, reason="skip shadow for this test")


def test_remote_decisions_are_the_embedded_decisions(w: World, sam: RemoteRegistry) -> None:
    canary(w)
    keys = [f"customer-{i}" for i in range(400)]
    remote = [sam.route("agent", key) for key in keys]
    embedded = [w.sam.route("agent", key) for key in keys]
    assert [d.as_dict() for d in remote] == [d.as_dict() for d in embedded]
    assert {d.arm.value for d in remote} == {"baseline", "candidate"}
    served = next(d for d in remote if d.arm.value == "candidate").release
    assert served.digest == w.candidate and served.model.ref == "m@1.1.0"
    assert served.prompt("greet").render(who="Ada") == "Hello Ada #2"
    twin = next(d for d in embedded if d.arm.value == "candidate").release
    assert served.params("greet") == twin.params("greet") and served.params("greet")["max_tokens"] == 600


def test_a_decision_makes_no_request_and_an_unchanged_table_costs_a_304(
    w: World, sam: RemoteRegistry, switch: Switch
) -> None:
    timer = FakeTimer()
    router = sam._router = RemoteRouter(sam, refresh_interval=1.0, timer=timer)
    first = router.route("agent", "alice")
    assert len(switch.requests) == 1 and router.fetches == 1
    for i in range(3000):
        router.route("agent", f"k{i}")
    assert len(switch.requests) == 1  # decided in process
    router.refresh()
    assert switch.requests[-1][2] == 304 and router.route("agent", "alice") is first
    # a change made elsewhere is picked up by the next refresh, in the background
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    timer.now += 1.5
    assert router.route("agent", "alice") is first  # this decision does not wait for the server
    worker = router._worker
    assert worker is not None
    worker.join(timeout=10)
    decision = router.route("agent", "alice")
    assert switch.requests[-1][2] == 200
    assert decision.shadow is not None and decision.stage == "shadow" and decision.table_version == 2


def test_a_change_made_through_this_client_is_seen_at_once(w: World, sam: RemoteRegistry) -> None:
    sam.router.refresh_interval = 3600
    assert sam.route("agent", "bob").shadow is None
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    sam.routing_changed()
    assert sam.route("agent", "bob").shadow is not None


def test_an_unreachable_server_leaves_the_last_table_in_service_marked_stale(
    w: World, sam: RemoteRegistry, switch: Switch
) -> None:
    timer = FakeTimer()
    router = sam._router = RemoteRouter(sam, refresh_interval=1.0, timer=timer)
    fresh = router.route("agent", "alice")
    switch.down = True
    router.refresh()
    stale = router.route("agent", "alice")
    assert stale.stale and not fresh.stale and stale.release is fresh.release
    with pytest.raises(StoreUnavailable):
        router.route("other", "alice")
    switch.down = False
    router.refresh()
    assert not router.route("agent", "alice").stale


def test_the_routing_table_endpoint_answers_with_entity_tags(
    w: World,
    registry: Registry,
    live_server: tuple[str, str],  # noqa: F811
) -> None:
    url, token = live_server
    api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"})
    first = api.get("/slots/agent/routing-table")
    tag = first.headers["etag"]
    assert first.status_code == 200 and first.json()["table"]["production"] == w.production
    assert api.get("/slots/agent/routing-table", headers={"If-None-Match": tag}).status_code == 304
    assert (
        api.get("/slots/agent/routing-table", headers={"If-None-Match": f'W/{tag}, "x"'}).status_code == 304
    )
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)
    changed = api.get("/slots/agent/routing-table", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert {r["release"]["digest"] for r in changed.json()["releases"]} == {w.production, w.candidate}
    registry.policies.apply({"drift": {"input_sample_rate": 0.5}})
    assert (
        api.get("/slots/agent/routing-table", headers={"If-None-Match": changed.headers["etag"]}).status_code
        == 200
    )
    assert api.get("/slots/nope/routing-table").status_code == 404
    w.admin.users.add("vera", ["viewer"])
    viewer = w.admin.tokens.create("vera").secret
    denied = httpx.get(
        f"{url}/api/v1/slots/agent/routing-table", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert denied.status_code == 403


def test_records_are_sent_in_batches_and_traced_like_embedded_ones(
    w: World, registry: Registry, sam: RemoteRegistry, switch: Switch
) -> None:
    w.olga.rollouts.start("agent", release=w.candidate, rollback_plan=PLAN)  # shadow: every request
    ids = []
    for i in range(50):
        with sam.transaction("agent", key=f"user-{i}") as txn:
            txn.record(quality=0.9, format_ok=True, cost=0.01)
            if txn.shadow is not None:
                txn.record_shadow(quality=0.8, format_ok=True, cost=0.02)
            ids.append(txn.id)
    report = sam.flush()
    assert (report.written, report.spooled, report.replayed) == (100, 0, 0)
    posts = [r for r in switch.requests if r[0] == "POST"]
    assert len(posts) == 1 and posts[0][1] == "/api/v1/slots/agent/transactions"
    trace = registry.trace(ids[0])
    assert trace.as_dict()["transaction"]["arm"] == "baseline"
    with sam.transaction("agent", key="late") as txn:
        txn.record(quality=1.0)
    switch.down = True
    held = sam.flush()
    assert (held.written, held.spooled) == (0, 1) and sam.recorder.held == 1
    switch.down = False
    resent = sam.flush()
    assert (resent.written, resent.replayed) == (0, 1) and sam.recorder.held == 0
    assert registry.trace(txn.id).as_dict()["transaction"]["id"] == txn.id


def test_a_remote_recorder_keeps_its_clock(w: World, sam: RemoteRegistry, clock: ManualClock) -> None:
    recorder = sam._recorder = RemoteRecorder(sam, clock=clock)
    clock.advance(timedelta(minutes=5))
    with sam.transaction("agent", key="k") as txn:
        txn.record(quality=0.5)
    assert txn.time == clock.now()
    assert recorder.flush().written == 1

"""Leases and the job runner: one holder per job, handed over when the holder stops or dies, on both
engines; driven step by step with the manual clock, plus one real-thread smoke test and, for the
race, two OS processes."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from charter.clock import ManualClock, SystemClock
from charter.config import Settings
from charter.service.jobs import (
    Job,
    JobRunner,
    checkpoint_signer,
    identity_problems,
    rollout_ticker,
    server_jobs,
    webhook_deliverer,
)
from charter.service.leases import Leases
from charter.service.registry import Registry
from charter.service.setup import open_registry
from charter.storage.engine import create_engine
from tests.conftest import add_user

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

TTL, RENEW = 10.0, 3.0
Held = tuple[float, float, int]  # from, until (timestamps), fencing token


@pytest.fixture
def leases(registry: Registry, clock: ManualClock) -> Leases:
    return Leases(registry.store.engine, clock)


def test_a_lease_has_one_holder_until_it_expires_or_is_released(leases: Leases, clock: ManualClock) -> None:
    assert leases.acquire("job", "a", TTL) == 1
    assert leases.acquire("job", "b", TTL) is None
    clock.advance(timedelta(seconds=9))
    assert leases.acquire("job", "a", TTL) == 1  # a renewal keeps the token …
    clock.advance(timedelta(seconds=9))
    assert leases.acquire("job", "b", TTL) is None  # … and moves the expiry
    clock.advance(timedelta(seconds=1))
    assert leases.acquire("job", "b", TTL) == 2  # expired: the next holder gets a higher token
    assert leases.acquire("job", "a", TTL) is None
    assert not leases.release("job", "a")  # only the holder can release
    assert leases.release("job", "b")
    assert leases.acquire("job", "a", TTL) == 3  # released: free at once
    current = leases.current("job")
    assert current is not None and (current.holder, current.token) == ("a", 3)
    assert current.acquired_at == clock.now() and current.expires_at == clock.now() + timedelta(seconds=TTL)
    assert leases.acquire("other-job", "b", TTL) == 1  # leases are per job


def test_acquisitions_and_handovers_are_logged(
    leases: Leases, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="charter.leases")
    leases.acquire("job", "a", TTL)
    leases.acquire("job", "a", TTL)
    clock.advance(timedelta(seconds=TTL))
    leases.acquire("job", "b", TTL)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "lease job acquired by a (token 1)"
    assert messages[1].startswith("lease job taken over by b from a") and messages[1].endswith("(token 2)")
    assert len(messages) == 2  # renewals are not logged at INFO


class Calls:
    """Who ran the job, in order."""

    def __init__(self) -> None:
        self.holders: list[str] = []

    def job(self, name: str = "count", interval: float = 5.0) -> Job:
        return Job(name, interval, lambda registry: self.holders.append(registry.actor))


@pytest.fixture
def runners(
    settings: Settings, clock: ManualClock, registry: Registry
) -> Iterator[tuple[JobRunner, JobRunner, Calls]]:
    add_user(registry, "ops-a", "operator")
    add_user(registry, "ops-b", "operator")
    calls = Calls()
    made: list[Registry] = []

    def factory(user: str) -> Registry:
        made.append(open_registry(settings, clock=clock, user=user))
        return made[-1]

    a = JobRunner(lambda: factory("ops-a"), clock, [calls.job()], holder="a", ttl=TTL, renew_every=RENEW)
    b = JobRunner(lambda: factory("ops-b"), clock, [calls.job()], holder="b", ttl=TTL, renew_every=RENEW)
    yield a, b, calls
    for reg in made:
        reg.close()


def _tick(clock: ManualClock, seconds: float, *runners: JobRunner) -> None:
    clock.advance(timedelta(seconds=seconds))
    for runner in runners:
        runner.run_once()


def test_of_two_runners_only_the_lease_holder_runs_the_job(
    runners: tuple[JobRunner, JobRunner, Calls], clock: ManualClock
) -> None:
    a, b, calls = runners
    assert a.run_once() == ["count"] and b.run_once() == []
    assert a.holds("count") and not b.holds("count") and a.token("count") == 1
    for _ in range(10):  # 30 s: runs every 5 s interval that has passed, always by the holder
        _tick(clock, RENEW, a, b)
    assert calls.holders == ["ops-a"] * 6


def test_a_stopped_runner_hands_its_jobs_over_at_once(
    runners: tuple[JobRunner, JobRunner, Calls], clock: ManualClock
) -> None:
    a, b, calls = runners
    a.run_once()
    b.run_once()
    a.stop()  # releases its leases
    assert not a.holds("count")
    assert b.run_once() == ["count"] and b.token("count") == 2
    assert calls.holders == ["ops-a", "ops-b"]


def test_a_crashed_holder_is_taken_over_within_the_ttl(
    runners: tuple[JobRunner, JobRunner, Calls], clock: ManualClock
) -> None:
    a, b, calls = runners
    a.run_once()
    b.run_once()
    # `a` dies: it neither renews nor releases. `b` keeps trying every renewal interval.
    waited = 0.0
    while not b.holds("count"):
        _tick(clock, RENEW, b)
        waited += RENEW
    assert TTL - RENEW <= waited <= TTL + RENEW
    assert b.token("count") == 2 and calls.holders == ["ops-a", "ops-b"]
    a.run_once()  # `a` comes back: it finds the lease taken and runs nothing
    assert not a.holds("count") and calls.holders == ["ops-a", "ops-b"]


def test_a_failing_job_is_logged_once_and_the_other_jobs_still_run(
    registry: Registry, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_registry: Registry) -> None:
        raise RuntimeError("the job broke")

    calls = Calls()
    runner = JobRunner(
        lambda: registry, clock, [Job("broken", 1.0, broken), calls.job("fine", 1.0)], holder="x"
    )
    caplog.set_level(logging.ERROR, logger="charter.jobs")
    for _ in range(3):
        assert runner.run_once() == ["broken", "fine"]
        clock.advance(timedelta(seconds=1))
    assert calls.holders == ["admin"] * 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "the job broke" in errors[0].getMessage() and errors[0].exc_info


def test_the_ready_made_jobs_run_as_the_registry_user(
    registry: Registry, clock: ManualClock, tmp_path: Path
) -> None:
    from charter.service.checkpoints import generate_key_pair

    hook = registry.webhooks.add("http://127.0.0.1:9/closed", "user.*").webhook
    add_user(registry, "bob", "viewer")
    assert [j.name for j in server_jobs(registry.settings)] == [
        "rollout-ticker",
        "webhook-deliverer",
        "webhook-pruner",
    ]
    runner = JobRunner(lambda: registry, clock, server_jobs(registry.settings), holder="x")
    assert runner.run_once() == ["rollout-ticker", "webhook-deliverer", "webhook-pruner"]
    attempted = registry.webhooks.deliveries(hook.id).deliveries[0]
    assert attempted.attempts == 1 and "ConnectError" in (attempted.last_error or "")
    assert registry.rollouts.tick().items == ()  # nothing active: the ticker had nothing to do

    key = tmp_path / "checkpoint.pem"
    generate_key_pair(key, tmp_path / "checkpoint.pub")
    keyed = dataclasses.replace(registry, settings=dataclasses.replace(registry.settings, checkpoint_key=key))
    assert "checkpoint-signer" in [j.name for j in server_jobs(keyed.settings)]
    signer = checkpoint_signer()
    assert signer.run(registry) is None  # no key configured: nothing signed
    assert signer.run(keyed) is not None
    assert signer.run(keyed) is None  # the head has not moved since
    assert len(registry.checkpoints.list()) == 1


def test_jobs_need_a_registered_user_with_the_right_roles(registry: Registry) -> None:
    jobs = [rollout_ticker(), webhook_deliverer(), checkpoint_signer()]
    assert identity_problems(registry, jobs) == []
    operator = add_user(registry, "ops", "operator")
    problems = identity_problems(operator, jobs)
    assert len(problems) == 2 and all("--add admin" in p for p in problems)
    assert "not a registered user" in identity_problems(registry.as_user("ghost"), jobs)[0]


def test_the_runner_threads_run_jobs_and_release_leases_on_stop(registry: Registry) -> None:
    ran = threading.Event()
    runner = JobRunner(
        lambda: registry,
        SystemClock(),
        [Job("smoke", 60.0, lambda _registry: ran.set())],
        ttl=2.0,
        renew_every=0.05,
        poll=0.02,
    )
    runner.start()
    try:
        assert ran.wait(10), "the job did not run"
    finally:
        runner.stop()
    lease = Leases(registry.store.engine, SystemClock()).current("smoke")
    assert lease is not None and lease.holder == runner.holder
    assert lease.expires_at <= datetime.now(UTC)  # released, not left to expire


# --- two OS processes racing for one lease -------------------------------------------------------


class _RecordingClock:
    """The system clock, remembering the time it last gave (the time a lease was computed from)."""

    def __init__(self) -> None:
        self.last = datetime.now(UTC)

    def now(self) -> datetime:
        self.last = datetime.now(UTC)
        return self.last


def _contend(
    url: str, holder: str, handovers: int, ttl: float, start: Barrier, out: Queue[tuple[str, list[Held]]]
) -> None:
    """Race for the lease until its fencing token reaches `handovers` (it changed hands that often),
    however long that takes on a loaded machine (within a minute)."""
    engine = create_engine(url)
    clock = _RecordingClock()
    leases = Leases(engine, clock)
    held: list[Held] = []
    leases.current("race")  # connected before the race starts
    start.wait(60)
    deadline, n, seen = time.monotonic() + 60, 0, 0
    while seen < handovers and time.monotonic() < deadline:
        n += 1
        if n % 8 == 0:
            lease = leases.current("race")
            seen = max(seen, 0 if lease is None else lease.token)
        token = leases.acquire("race", holder, ttl)
        if token is not None:
            seen = max(seen, token)
            held.append((clock.last.timestamp(), clock.last.timestamp() + ttl, token))
            if n % 4 == 0 and leases.release("race", holder):  # False if it had expired already
                held[-1] = (held[-1][0], clock.last.timestamp(), token)
                time.sleep(0.002)  # give way, so the lease changes hands often
    engine.dispose()
    out.put((holder, held))


def test_two_processes_never_hold_one_lease_at_once(database_url: str, registry: Registry) -> None:
    context = multiprocessing.get_context("spawn")
    out, start = context.Queue(), context.Barrier(2)
    processes = [
        context.Process(target=_contend, args=(database_url, f"p{i}", 6, 0.004, start, out)) for i in range(2)
    ]
    for process in processes:
        process.start()
    results = dict(out.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    intervals = sorted(
        (start, end, token, holder) for holder, held in results.items() for start, end, token in held
    )
    assert {h for *_, h in intervals} == {"p0", "p1"}, "both processes should have held the lease"
    possession: dict[str, float] = {}  # holder -> end of its latest acquisition, renewal or release
    tokens: dict[int, str] = {}
    previous: tuple[str, int] | None = None
    for start, end, token, holder in intervals:
        for other, until in possession.items():
            assert other == holder or until <= start, (
                f"{other} held the lease until {until}; {holder} took it at {start} (token {token}): "
                + str([i for i in intervals if abs(i[0] - start) < 0.01])
            )
        possession[holder] = end
        assert tokens.setdefault(token, holder) == holder, f"token {token} was given to two holders"
        if previous is not None and previous[0] != holder:
            assert token > previous[1], "a new holder must get a higher fencing token"
        previous = (holder, token)
    assert max(tokens) >= 4, "the lease should have changed hands several times"

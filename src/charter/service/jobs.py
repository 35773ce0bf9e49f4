"""Background jobs of the server: the rollout ticker, the webhook deliverer and pruner, the checkpoint
signer.

Every server process runs a `JobRunner`. Before a job runs, its lease must be held: with several
processes on one database, exactly one runs each job at a time, and when that process dies its
leases expire and another process takes the jobs over within about `ttl` seconds.

Two daemon threads per runner: a heartbeat that acquires or renews every job's lease each
`renew_every` seconds, and a worker that runs the jobs whose lease is held and whose interval has
passed. A slow job therefore never lets its lease lapse while its process is alive. Tests drive
`run_once()` (one heartbeat, then one worker pass) with a manual clock instead of the threads.

Jobs act as the registry's user: whoever `registry_factory` opens the registry for. The server
opens it for its configured user (CHARTER_USER), which must exist and hold the roles the jobs need:
operator for the rollout ticker, admin for webhook delivery and checkpoints. A job that fails is
logged and retried at its next interval; it never stops the runner.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from charter.clock import Clock
from charter.domain.roles import Role
from charter.service.leases import Leases

if TYPE_CHECKING:
    from charter.config import Settings
    from charter.service.registry import Registry

log = logging.getLogger("charter.jobs")

DEFAULT_TTL = 10.0  # seconds a lease lasts without renewal
DEFAULT_RENEW = 3.0  # seconds between renewals (about a third of the ttl)


@dataclass(frozen=True)
class Job:
    """A named callable run every `interval` seconds by whichever process holds its lease."""

    name: str
    interval: float
    run: Callable[[Registry], object]
    role: Role | None = None  # the role the acting user needs (the service checks it on every run)


def rollout_ticker(interval: float = 15.0) -> Job:
    """Apply the automatic rollout rules (safety rollback, failed or expired stages) to every active
    rollout (`RolloutService.tick`)."""

    def run(registry: Registry) -> object:
        report = registry.rollouts.tick()
        for item in report.items:
            if item.action is not None:
                log.info("rollout ticker: slot %s: %s (%s)", item.slot, item.action, item.reason)
        return report

    return Job("rollout-ticker", interval, run, Role.OPERATOR)


def webhook_deliverer(interval: float = 2.0, limit: int = 100) -> Job:
    """Attempt the due webhook deliveries (`WebhookService.deliver_due`)."""

    def run(registry: Registry) -> object:
        return registry.webhooks.deliver_due(limit=limit)

    return Job("webhook-deliverer", interval, run, Role.ADMIN)


def webhook_pruner(interval: float = 3600.0) -> Job:
    """Delete finished webhook deliveries older than the retention (`WebhookService.prune`)."""

    def run(registry: Registry) -> object:
        return registry.webhooks.prune()

    return Job("webhook-pruner", interval, run, Role.ADMIN)


def checkpoint_signer(interval: float = 900.0) -> Job:
    """Sign the ledger's head when it has moved since the last checkpoint; does nothing unless a
    checkpoint key is configured (CHARTER_CHECKPOINT_KEY)."""

    def run(registry: Registry) -> object:
        if registry.settings.checkpoint_key is None:
            return None
        return registry.checkpoints.sign(if_changed=True)

    return Job("checkpoint-signer", interval, run, Role.ADMIN)


def server_jobs(settings: Settings) -> list[Job]:
    """The jobs a server process runs: the checkpoint signer only when a key is configured."""
    jobs = [rollout_ticker(), webhook_deliverer(), webhook_pruner()]
    if settings.checkpoint_key is not None:
        jobs.append(checkpoint_signer())
    return jobs


def start_server_jobs(root: Registry) -> JobRunner:
    """Start the server's jobs in daemon threads, acting as the server's user (`root.actor`, from
    CHARTER_USER); `stop()` the runner on shutdown. Missing roles are logged at once."""
    for problem in identity_problems(root, server_jobs(root.settings)):
        log.error("background jobs: %s", problem)
    runner = JobRunner(lambda: root.as_user(root.actor), root.clock, server_jobs(root.settings))
    runner.start()
    return runner


def identity_problems(registry: Registry, jobs: Sequence[Job]) -> list[str]:
    """What keeps `registry.actor` from running `jobs`: unknown, disabled, or missing a role."""
    with registry.store.read() as tx:
        user = tx.users.find(registry.actor)
    name = registry.actor
    if user is None:
        return [
            f"they act as {name!r} (CHARTER_USER), which is not a registered user; add it with "
            f"`charter user add {name} --role operator --role admin`"
        ]
    if user.disabled:
        return [
            f"they act as {name!r} (CHARTER_USER), which is disabled; enable it with "
            f"`charter user enable {name}`"
        ]
    return [
        f"job {job.name} needs the {job.role.value} role, which {name!r} (CHARTER_USER) lacks; grant it "
        f"with `charter user roles {name} --add {job.role.value}`"
        for job in jobs
        if job.role is not None and job.role not in user.roles
    ]


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    def __init__(
        self,
        registry_factory: Callable[[], Registry],
        clock: Clock,
        jobs: Sequence[Job],
        *,
        holder: str | None = None,
        ttl: float = DEFAULT_TTL,
        renew_every: float = DEFAULT_RENEW,
        poll: float = 0.5,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {names}")
        if not 0 < renew_every < ttl:
            raise ValueError(f"renew_every ({renew_every} s) must be positive and below the ttl ({ttl} s)")
        self.jobs = tuple(jobs)
        self.clock = clock
        self.holder = holder or default_holder()
        self.ttl, self.renew_every, self.poll = ttl, renew_every, poll
        self._factory = registry_factory
        self._registry: Registry | None = None
        self._leases: Leases | None = None
        self._lock = threading.Lock()
        self._valid_until: dict[str, datetime] = {}
        self._tokens: dict[str, int] = {}
        self._next_run: dict[str, datetime] = {}
        self._last_error: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- the registry and the leases, made on first use -----------------------------------------

    def _open(self) -> tuple[Registry, Leases]:
        with self._lock:
            if self._registry is None or self._leases is None:
                self._registry = self._factory()
                self._leases = Leases(self._registry.store.engine, self.clock)
            return self._registry, self._leases

    # --- one heartbeat, one worker pass -----------------------------------------------------------

    def renew(self) -> None:
        """Acquire or renew the lease of every job; a job whose lease another process holds is
        left to that process."""
        _, leases = self._open()
        for job in self.jobs:
            now = self.clock.now()
            try:
                token = leases.acquire(job.name, self.holder, self.ttl)
            except Exception as exc:  # the database is unreachable: the lease runs out on its own
                log.warning("job %s: could not renew its lease: %s", job.name, exc)
                continue
            with self._lock:
                if token is None:
                    if self._valid_until.pop(job.name, None) is not None:
                        log.warning("job %s: lost its lease to another process", job.name)
                    self._tokens.pop(job.name, None)
                else:
                    self._valid_until[job.name] = now + timedelta(seconds=self.ttl)
                    self._tokens[job.name] = token

    def holds(self, job: str) -> bool:
        """Whether this runner's lease on `job` is current (renewed within the ttl)."""
        with self._lock:
            until = self._valid_until.get(job)
        return until is not None and self.clock.now() < until

    def token(self, job: str) -> int | None:
        """The fencing token of this runner's lease on `job`, while it holds it."""
        if not self.holds(job):
            return None
        with self._lock:
            return self._tokens.get(job)

    def run_due(self) -> list[str]:
        """Run each job whose lease this runner holds and whose interval has passed; the names run."""
        registry, _ = self._open()
        ran = []
        for job in self.jobs:
            now = self.clock.now()
            if not self.holds(job.name) or now < self._next_run.get(job.name, now):
                continue
            self._next_run[job.name] = now + timedelta(seconds=job.interval)
            ran.append(job.name)
            try:
                job.run(registry)
            except Exception as exc:  # one job failing must not stop the others
                self._failed(job, exc)
            else:
                if self._last_error.pop(job.name, None) is not None:
                    log.info("job %s: succeeded again", job.name)
        return ran

    def run_once(self) -> list[str]:
        """One heartbeat and one worker pass (what the threads do, for tests and embedded use)."""
        self.renew()
        return self.run_due()

    def _failed(self, job: Job, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if self._last_error.get(job.name) == message:
            log.debug("job %s failed again: %s", job.name, message)
            return
        self._last_error[job.name] = message
        log.error("job %s failed (logged once until it changes): %s", job.name, message, exc_info=exc)

    # --- the threads ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("the job runner is already running")
        self._stop.clear()
        self._threads = [
            threading.Thread(
                target=self._loop, args=(self.renew, self.renew_every), name="charter-job-leases", daemon=True
            ),
            threading.Thread(
                target=self._loop, args=(self.run_due, self.poll), name="charter-jobs", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        log.info("job runner %s started: %s", self.holder, ", ".join(j.name for j in self.jobs))

    def _loop(self, step: Callable[[], object], every: float) -> None:
        while not self._stop.is_set():
            try:
                step()
            except Exception:  # never let a thread die: log and carry on
                log.exception("job runner %s: %s failed", self.holder, getattr(step, "__name__", step))
            self._stop.wait(every)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads (waiting for a running job to finish) and release the leases held."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        with self._lock:
            held, leases = list(self._valid_until), self._leases
            self._valid_until.clear()
            self._tokens.clear()
        if leases is None:
            return
        for name in held:
            try:
                leases.release(name, self.holder)
            except Exception as exc:
                log.warning("job %s: could not release its lease (it expires on its own): %s", name, exc)
        log.info("job runner %s stopped", self.holder)

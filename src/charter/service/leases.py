"""Leases: at most one holder per background job across every server process.

A lease names its holder and expires `ttl` after it was last acquired or renewed; the holder renews
it well before then. When a holder dies, the lease expires and the next `acquire` by another process
takes it, with a fencing token one higher. Leases are operational state: they are logged, not
audited. Times come from the injected clock, so the servers sharing a database need synchronised
clocks (NTP) to well within the ttl.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.engine import Engine

from charter.clock import Clock
from charter.errors import InvalidInput
from charter.storage.leases import LeaseRecord, LeaseRepo, lease_transaction

log = logging.getLogger("charter.leases")


class Leases:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine, self.clock = engine, clock

    def acquire(self, job: str, holder: str, ttl: float | timedelta) -> int | None:
        """Take or renew `job`'s lease for `holder` until `ttl` from now: the fencing token, or None
        while another holder's lease runs. Succeeds when the lease is free, has expired, or is
        already `holder`'s (a renewal keeps the token). The clock is read once, before the change."""
        span = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
        if span <= timedelta(0):
            raise InvalidInput(f"a lease needs a positive ttl, not {span.total_seconds()} s")
        now = self.clock.now()
        with lease_transaction(self.engine) as conn:
            repo = LeaseRepo(conn)
            before = repo.find(job)  # for the log only; the statements below decide
            token = repo.take(job, holder, now=now, expires=now + span)
            if token is None and before is None and repo.create(job, holder, now=now, expires=now + span):
                token = 1
        _log_acquisition(job, holder, token, before)
        return token

    def release(self, job: str, holder: str) -> bool:
        """End `holder`'s lease on `job` now, so another process may take it at once."""
        with lease_transaction(self.engine) as conn:
            released = LeaseRepo(conn).release(job, holder, now=self.clock.now())
        if released:
            log.info("lease %s released by %s", job, holder)
        return released

    def current(self, job: str) -> LeaseRecord | None:
        """The lease row of `job` (its holder may have expired), or None if it was never taken."""
        with self.engine.connect() as conn:
            return LeaseRepo(conn).find(job)


def _log_acquisition(job: str, holder: str, token: int | None, before: LeaseRecord | None) -> None:
    if token is None:
        return
    if before is None:
        log.info("lease %s acquired by %s (token %d)", job, holder, token)
    elif before.holder != holder:
        log.info(
            "lease %s taken over by %s from %s, whose lease expired at %s (token %d)",
            job,
            holder,
            before.holder,
            before.expires_at.isoformat(),
            token,
        )
    elif before.token != token:
        log.info("lease %s acquired by %s (token %d)", job, holder, token)
    else:
        log.debug("lease %s renewed by %s (token %d)", job, holder, token)

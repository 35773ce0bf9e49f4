"""The in-process router: `reg.route(slot, key)` decides without a network call or a query.

Each slot's routing table (`charter.domain.routing.RoutingTable`) is read once and cached, with
every possible decision precomputed — the releases ready to serve (model version, prompt versions
to render, effective parameters), the arm, the shadow release — so a decision is one hash, two
comparisons and two lookups.

Refresh: at most every `refresh_interval` seconds (default 1 s) a route() call reads the audit
ledger's head sequence (one primary-key read). Every change that affects routing appends an audit
event, so while the head has not moved every cached table is exact; when it moved, each cached
slot's routing-table version is read and the tables that changed are rebuilt. Changes made through
the same registry invalidate the cache at once.

Outage: if the store cannot be reached, the router keeps serving the last tables it had and marks
every decision `stale` until a refresh succeeds (retried every `refresh_interval`). A slot never
loaded before cannot be routed then (`StoreUnavailable`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from charter.domain import rollout as machine
from charter.domain.roles import Action
from charter.domain.routing import BUCKETS, Arm, Decision, RoutingTable
from charter.domain.tracks import parse_track_policy
from charter.errors import NotFound, StoreUnavailable
from charter.service.access import authorize
from charter.service.policies import current_policy
from charter.service.readcache import LedgerCache
from charter.service.releases import ServedRelease, require_slot, served_release
from charter.storage.slots import SlotRecord
from charter.storage.store import Tx

if TYPE_CHECKING:
    from charter.service.registry import Registry

DEFAULT_REFRESH_INTERVAL_S = 1.0
DEFAULT_INPUT_SAMPLE_RATE = 0.1


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where one request goes. `release` serves it; `shadow`, when set (shadow stage), is the
    candidate to run beside it — log its output, never serve it."""

    slot: str
    release: ServedRelease
    arm: Arm
    shadow: ServedRelease | None
    stage: str | None
    table_version: int
    stale: bool
    rollout: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "release": self.release.digest,
            "arm": self.arm.value,
            "shadow": None if self.shadow is None else self.shadow.digest,
            "stage": self.stage,
            "table_version": self.table_version,
            "stale": self.stale,
            "rollout": self.rollout,
            "model": self.release.release.model,
            "prompts": list(self.release.release.prompts),
        }


class _Entry:
    """One slot's cached table and its precomputed decisions (keyed by the domain decision's id)."""

    __slots__ = ("decisions", "input_sample_rate", "table")

    def __init__(self, table: RoutingTable, decisions: dict[int, RouteDecision], rate: float) -> None:
        self.table, self.decisions, self.input_sample_rate = table, decisions, rate


def slot_table(tx: Tx, slot: SlotRecord) -> RoutingTable | None:
    """The slot's routing table now; None before it has a production release."""
    period = tx.slots.production(slot.id)
    if period is None:
        return None
    active = tx.rollouts.active_rollout(slot.id)
    rollout = None
    if active is not None:
        rollout = machine.Rollout.from_dict(active.state, parse_track_policy(active.policy_document))
    return machine.routing_table(slot.name, slot.routing_version, period.release, rollout)


def require_table(tx: Tx, slot: SlotRecord) -> RoutingTable:
    """The slot's routing table now; NotFound before it has a production release."""
    table = slot_table(tx, slot)
    if table is None:
        raise NotFound(
            f"a production release of slot {slot.name}",
            f"nothing can be routed before `charter slot bootstrap {slot.name} --release ID`",
        )
    return table


class DecisionCache:
    """What the embedded router and the remote one (`charter.client.routing`) share: the cached
    tables with their precomputed decisions, and the decision itself. Subclasses load a slot's
    entry (`_load`) and decide when to refresh."""

    _entries: dict[str, Any]
    _stale: bool
    _interval: float
    _next_check: float

    def _load(self, slot: str) -> Any:
        raise NotImplementedError

    def _decide(self, slot: str, key: str | None) -> RouteDecision:
        entry = self._entries.get(slot)
        if entry is None:
            entry = self._load(slot)
        if key is None:
            decision = entry.table.decide_bucket(random.randrange(BUCKETS), self._stale)
        else:
            decision = entry.table.decide(key, self._stale)
        result: RouteDecision = entry.decisions[id(decision)]
        return result

    def input_sample_rate(self, slot: str) -> float:
        entry = self._entries.get(slot)
        return DEFAULT_INPUT_SAMPLE_RATE if entry is None else float(entry.input_sample_rate)

    @property
    def stale(self) -> bool:
        return self._stale

    @property
    def refresh_interval(self) -> float:
        """Seconds between checks for changed routing tables (0: before every decision)."""
        return self._interval

    @refresh_interval.setter
    def refresh_interval(self, seconds: float) -> None:
        self._interval = seconds
        self._next_check = 0.0


class Router(DecisionCache):
    def __init__(
        self,
        registry: Registry,
        *,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL_S,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self._interval = refresh_interval
        self._timer = timer
        self._entries: dict[str, _Entry] = {}
        self._releases: dict[str, ServedRelease] = {}  # digest → release (immutable)
        self._probe = LedgerCache(registry.store, registry.actor)
        self._head = -1
        self._next_check = 0.0
        self._stale = False
        self._lock = threading.Lock()
        driver: type[BaseException] = registry.store.engine.dialect.loaded_dbapi.Error
        self._unreachable: tuple[type[BaseException], ...] = (*_UNREACHABLE, driver)

    # --- the hot path ---------------------------------------------------------------------------

    def route(self, slot: str, key: str | None = None) -> RouteDecision:
        if self._timer() >= self._next_check:  # the ledger head is read at most this often
            self.refresh()
        return self._decide(slot, key)

    # --- refreshing -----------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget the ledger head seen, so the next route() re-reads the tables that changed."""
        self._head = -1
        self._next_check = 0.0

    def refresh(self) -> None:
        """Re-read the tables that changed since the last refresh (see the module docstring)."""
        if not self._lock.acquire(blocking=False):
            return  # another thread is refreshing; serve the current tables meanwhile
        try:
            self._next_check = self._timer() + self._interval
            try:
                head = self._probe.head()
                if head != self._head:
                    if self._entries:
                        self._reload(list(self._entries))
                    self._head = head
                self._stale = False
            except self._unreachable:
                self._stale = True
        finally:
            self._lock.release()

    def _reload(self, slots: list[str]) -> None:
        with self.registry.store.read() as tx:
            authorize(tx, self.registry.actor, Action.ROUTE)
            rate = sample_rate(tx)
            versions = tx.slots.routing_versions()
            for name in slots:
                entry = self._entries.get(name)
                if name not in versions:
                    self._entries.pop(name, None)
                elif entry is None or entry.table.version != versions[name]:
                    self._entries[name] = self._build(tx, require_slot(tx, name), rate)
                elif entry.input_sample_rate != rate:
                    entry.input_sample_rate = rate

    def _load(self, slot: str) -> _Entry:
        try:
            with self.registry.store.read() as tx:
                authorize(tx, self.registry.actor, Action.ROUTE)
                entry = self._build(tx, require_slot(tx, slot), sample_rate(tx))
        except self._unreachable as exc:
            self._stale = True
            raise StoreUnavailable(f"the routing table of slot {slot}", _reason(exc)) from None
        self._entries[slot] = entry
        return entry

    def _build(self, tx: Tx, slot: SlotRecord, rate: float) -> _Entry:
        table = require_table(tx, slot)
        production = self._release(tx, table.production)
        candidate = self._release(tx, table.candidate) if table.candidate else None
        return _Entry(table, decisions_for(table, production, candidate), rate)

    def _release(self, tx: Tx, digest: str) -> ServedRelease:
        found = self._releases.get(digest)
        if found is None:
            record = tx.slots.release_by_digest(digest)
            assert record is not None
            found = self._releases[digest] = served_release(tx, record)
        return found

    def explain(self, slot: str, key: str) -> dict[str, Any]:
        """A decision with its arithmetic (for `charter route SLOT KEY`)."""
        decision = self.route(slot, key)
        entry = self._entries[slot]
        return {**entry.table.explain(key), "decision": decision.as_dict(), "table": entry.table.as_dict()}


def decisions_for(
    table: RoutingTable, production: ServedRelease, candidate: ServedRelease | None
) -> dict[int, RouteDecision]:
    """Every decision `table` can return, as the router hands it out, keyed by the id of the domain
    decision (`table.decide(...)` returns one of a fixed set of objects): routing is then a lookup."""
    decisions: dict[int, RouteDecision] = {}
    for stale in (False, True):
        for bucket in _representative_buckets(table):
            domain = table.decide_bucket(bucket, stale)
            decisions[id(domain)] = _rich(table.slot, domain, production, candidate)
    return decisions


def _representative_buckets(table: RoutingTable) -> list[int]:
    """One bucket per region of the table (candidate, shadow, baseline), so that every decision
    `decide` can return is precomputed."""
    candidate = round(table.traffic * 100)
    shadow = round(table.shadow_sample * BUCKETS)
    return sorted({0, max(candidate - 1, 0), candidate if candidate < BUCKETS else BUCKETS - 1,
                   max(shadow - 1, 0), min(shadow, BUCKETS - 1), BUCKETS - 1})  # fmt: skip


def _rich(
    slot: str, domain: Decision, production: ServedRelease, candidate: ServedRelease | None
) -> RouteDecision:
    serving = candidate if domain.arm is Arm.CANDIDATE and candidate is not None else production
    shadow = candidate if domain.shadow is not None else None
    return RouteDecision(
        slot, serving, domain.arm, shadow, domain.stage, domain.table_version, domain.stale, domain.rollout
    )


def sample_rate(tx: Tx) -> float:
    """The share of transaction records that keep their request's inputs (the `drift` policy)."""
    return float(current_policy(tx).section("drift").get("input_sample_rate", DEFAULT_INPUT_SAMPLE_RATE))


_UNREACHABLE: tuple[type[BaseException], ...] = (sa.exc.DBAPIError, sa.exc.TimeoutError, OSError)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return (
        str(orig if orig is not None else exc).strip().splitlines()[0][:200]
        if str(exc)
        else type(exc).__name__
    )

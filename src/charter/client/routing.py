"""Routing and recording in remote mode: decisions in this process, records in batches.

`RemoteRouter.route(slot, key)` decides exactly as the embedded router does — the same domain
table (`charter.domain.routing.RoutingTable`) and the same precomputed decisions
(`charter.service.router.decisions_for`) — from a copy of the slot's routing table fetched once
(`GET /slots/SLOT/routing-table`), so a decision makes no network call. The copy is refreshed in
the background at most every `refresh_interval` seconds with the entity tag the server gave it:
while the slot's routing is unchanged the answer is "304 Not Modified" and nothing is read. A
change made through this client (`remote.routing_changed()`) makes the next decision re-read at
once. When the server cannot be reached the router keeps the tables it has and marks its decisions
stale until a refresh succeeds; a slot never loaded cannot be routed then (`StoreUnavailable`).

`RemoteRecorder` gives `with remote.transaction(slot, key) as txn:` and `remote.flush()`: records
queue in memory (the embedded recorder's request path, `charter.service.recorder.RecordQueue`) and
a background thread sends them in batches of JSON Lines to the server, which validates and stores
them like `charter txn ingest`. A batch the server cannot be reached for is kept in memory and
sent again at the next flush (records keep their ids, and ids already stored are skipped, so a
retry never duplicates a record). A batch the server refuses is set aside in `rejected`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from charter.clock import Clock, SystemClock
from charter.domain.routing import RoutingTable
from charter.errors import CharterError, StoreUnavailable
from charter.service.recorder import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_INTERVAL_S,
    FlushReport,
    RecordQueue,
    record_fields,
)
from charter.service.router import DEFAULT_REFRESH_INTERVAL_S, DecisionCache, decisions_for

if TYPE_CHECKING:
    from charter.client.blobs import Remote
    from charter.service.releases import ServedRelease
    from charter.service.router import RouteDecision

log = logging.getLogger("charter.client.routing")


@dataclass(frozen=True)
class _Entry:
    table: RoutingTable
    decisions: dict[int, RouteDecision]
    input_sample_rate: float
    tag: str


class RemoteRouter(DecisionCache):
    def __init__(
        self,
        remote: Remote,
        *,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL_S,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remote = remote
        self._interval = refresh_interval
        self._timer = timer
        self._entries: dict[str, _Entry] = {}
        self._releases: dict[str, ServedRelease] = {}  # digest → release (immutable)
        self._next_check = timer() + refresh_interval
        self._stale = False
        self._invalid = False
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self.fetches = 0  # routing-table requests made (answered 200 or 304)

    # --- the hot path ---------------------------------------------------------------------------

    def route(self, slot: str, key: str | None = None) -> RouteDecision:
        if self._invalid:
            self.refresh()
        elif self._timer() >= self._next_check:
            self._refresh_in_background()
        return self._decide(slot, key)

    def explain(self, slot: str, key: str) -> dict[str, Any]:
        """A decision with its arithmetic (for `charter route SLOT KEY`)."""
        decision = self.route(slot, key)
        table = self._entries[slot].table
        return {**table.explain(key), "decision": decision.as_dict(), "table": table.as_dict()}

    # --- refreshing -----------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Re-read the tables before the next decision (called after a change made through here)."""
        self._invalid = True

    def refresh(self) -> None:
        """Ask the server about every table held (one conditional request each); wait for it."""
        with self._lock:
            self._invalid = False
            self._next_check = self._timer() + self._interval
            try:
                for slot, entry in list(self._entries.items()):
                    self._entries[slot] = self._fetch(slot, entry)
            except StoreUnavailable as exc:
                log.warning("charter router: the server is unreachable (%s); decisions are stale", exc)
                self._stale = True
            else:
                self._stale = False

    def _refresh_in_background(self) -> None:
        self._next_check = self._timer() + self._interval
        worker = self._worker
        if worker is not None and worker.is_alive():
            return
        self._worker = threading.Thread(target=self._refresh_quietly, name="charter-router", daemon=True)
        self._worker.start()

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception:  # a refresh must never break routing; the tables in hand stay in use
            log.exception("charter router: refreshing the routing tables failed")

    def _load(self, slot: str) -> _Entry:
        try:
            entry = self._fetch(slot, None)
        except StoreUnavailable:
            self._stale = True
            raise
        self._entries[slot] = entry
        return entry

    def _fetch(self, slot: str, current: _Entry | None) -> _Entry:
        from charter.client.decode import decode
        from charter.service.model_results import ModelVersion
        from charter.service.prompt_version import PromptVersion
        from charter.service.releases import Release, ServedRelease

        headers = {} if current is None else {"If-None-Match": current.tag}
        response = self.remote.request("GET", f"/slots/{quote(slot, safe='')}/routing-table", headers=headers)
        self.fetches += 1
        if response.status_code == 304 and current is not None:
            return current
        document = response.json()
        for item in document["releases"]:
            release = decode(Release, item["release"])
            if release.digest not in self._releases:
                prompts = [decode(PromptVersion, p) for p in item["prompts"]]
                values = {
                    p: {k: v["value"] for k, v in e.items()} for p, e in release.effective_params.items()
                }
                self._releases[release.digest] = ServedRelease(
                    release, decode(ModelVersion, item["model"]), {p.name: p for p in prompts}, values
                )
        table = RoutingTable.from_dict(document["table"])
        production = self._releases[table.production]
        candidate = self._releases[table.candidate] if table.candidate else None
        return _Entry(
            table,
            decisions_for(table, production, candidate),
            float(document["input_sample_rate"]),
            response.headers["ETag"],
        )


class RemoteRecorder(RecordQueue):
    def __init__(
        self,
        remote: Remote,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Clock | None = None,
    ) -> None:
        clock = clock or SystemClock()
        super().__init__(
            now=clock.now,
            wall_clock=isinstance(clock, SystemClock),
            flush_interval=flush_interval,
            batch_size=batch_size,
        )
        self.remote = remote
        self._retry: deque[tuple[str, list[str]]] = deque()  # (slot, lines) the server did not get
        self.rejected: list[tuple[str, list[str], CharterError]] = []

    def router(self) -> RemoteRouter:
        owner: Any = self.remote
        router: RemoteRouter = owner.router
        return router

    def flush(self) -> FlushReport:
        """Send everything pending (first what an outage held back); keep what cannot be sent."""
        from charter.client.ingest import BatchSender

        with self._write_lock:
            fresh: dict[str, list[str]] = {}
            for txn in self._drain():
                lines = fresh.setdefault(txn.decision.slot, [])
                lines.extend(json.dumps(fields, default=str) for fields in record_fields(txn))
            retries = list(self._retry)
            self._retry.clear()
            sent = {True: 0, False: 0}  # retried?: records sent
            kept = 0
            failure: CharterError | None = None
            reachable = True
            for retried, (slot, lines) in [(True, r) for r in retries] + [(False, f) for f in fresh.items()]:
                if not reachable:
                    self._retry.append((slot, lines))
                    kept += 0 if retried else len(lines)
                    continue
                sender = BatchSender(self.remote, slot)
                try:
                    sender.send_lines(lines)
                except StoreUnavailable as exc:
                    log.warning(
                        "charter recorder: the server is unreachable (%s); keeping %d records",
                        exc,
                        len(lines),
                    )
                    reachable = False
                    self._retry.append((slot, lines))
                    kept += 0 if retried else len(lines)
                except CharterError as exc:
                    log.error(
                        "charter recorder: the server refused %d records of %s: %s", len(lines), slot, exc
                    )
                    self.rejected.append((slot, lines, exc))
                    failure = failure or exc
                else:
                    sent[retried] += sender.loaded
            if failure is not None:
                raise failure
            return FlushReport(sent[False], kept, sent[True])

    @property
    def held(self) -> int:
        """Records kept for a retry because the server could not be reached."""
        return sum(len(lines) for _, lines in self._retry)

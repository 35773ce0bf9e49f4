"""The registry: every use case of charter, bound to a store and an acting user."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from charter.clock import Clock
from charter.config import Settings
from charter.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterable

    from charter.domain.ledger import AuditEvent
    from charter.service.audit import AuditService
    from charter.service.catalog import CatalogService
    from charter.service.checkpoints import CheckpointService
    from charter.service.datasets import DatasetService
    from charter.service.ingest import IngestReport
    from charter.service.models import ModelService
    from charter.service.policies import PolicyService
    from charter.service.prompts import PromptService
    from charter.service.provenance import ProvenanceService, SlotState, StateDiff, Trace
    from charter.service.recorder import FlushReport, Recorder, Txn
    from charter.service.releases import ReleaseService
    from charter.service.reports import ReportService
    from charter.service.rollouts import RolloutService
    from charter.service.router import RouteDecision, Router
    from charter.service.slots import SlotService
    from charter.service.tokens import TokenService
    from charter.service.users import UserService
    from charter.service.webhooks import WebhookService


@dataclass
class Registry:
    """Entry point of the Python SDK (embedded mode) and of every skin.

    `reg.models`, `reg.datasets`, `reg.prompts`, `reg.users`, `reg.audit` and `reg.policies` hold the use
    cases; each call is one database transaction, authorised for `actor`. Deployment tracks: `reg.slots`,
    `reg.releases`, `reg.rollouts`; `reg.route`, `reg.transaction`, `reg.flush`, `reg.ingest`;
    `reg.trace`, `reg.state`, `reg.state_diff`, `reg.changes`.
    """

    store: Store
    settings: Settings
    actor: str
    clock: Clock
    _closed: bool = field(default=False, init=False)
    _router: Router | None = field(default=None, init=False, repr=False)
    _recorder: Recorder | None = field(default=None, init=False, repr=False)

    # The use cases, each imported on first use: a command that only reads users does not pay for
    # importing the dataset engine, Jinja2 or the statistics.

    @cached_property
    def users(self) -> UserService:
        from charter.service.users import UserService

        return UserService(self)

    @cached_property
    def audit(self) -> AuditService:
        from charter.service.audit import AuditService

        return AuditService(self)

    @cached_property
    def policies(self) -> PolicyService:
        from charter.service.policies import PolicyService

        return PolicyService(self)

    @cached_property
    def datasets(self) -> DatasetService:
        from charter.service.datasets import DatasetService

        return DatasetService(self)

    @cached_property
    def models(self) -> ModelService:
        from charter.service.models import ModelService

        return ModelService(self)

    @cached_property
    def prompts(self) -> PromptService:
        from charter.service.prompts import PromptService

        return PromptService(self)

    @cached_property
    def slots(self) -> SlotService:
        from charter.service.slots import SlotService

        return SlotService(self)

    @cached_property
    def releases(self) -> ReleaseService:
        from charter.service.releases import ReleaseService

        return ReleaseService(self)

    @cached_property
    def rollouts(self) -> RolloutService:
        from charter.service.rollouts import RolloutService

        return RolloutService(self)

    @cached_property
    def provenance(self) -> ProvenanceService:
        from charter.service.provenance import ProvenanceService

        return ProvenanceService(self)

    @cached_property
    def catalog(self) -> CatalogService:
        """Paged reads for browsing (the web UI): one page and a total at a time."""
        from charter.service.catalog import CatalogService

        return CatalogService(self)

    @cached_property
    def tokens(self) -> TokenService:
        from charter.service.tokens import TokenService

        return TokenService(self)

    @cached_property
    def webhooks(self) -> WebhookService:
        from charter.service.webhooks import WebhookService

        return WebhookService(self)

    @cached_property
    def checkpoints(self) -> CheckpointService:
        from charter.service.checkpoints import CheckpointService

        return CheckpointService(self)

    @cached_property
    def reports(self) -> ReportService:
        from charter.service.reports import ReportService

        return ReportService(self)

    # --- routing and transaction records (see charter.service.router and .recorder) ------------

    @property
    def router(self) -> Router:
        if self._router is None:
            from charter.service.router import Router

            self._router = Router(self)
        return self._router

    @property
    def recorder(self) -> Recorder:
        if self._recorder is None:
            from charter.service.recorder import Recorder

            self._recorder = Recorder(self)
        return self._recorder

    def route(self, slot: str, key: str | None = None) -> RouteDecision:
        """Which release serves the request with `key` on `slot` (no key: a random bucket)."""
        return self.router.route(slot, key)

    def transaction(self, slot: str, key: str | None = None) -> Txn:
        """`with reg.transaction(SLOT, key=...) as txn:` routes the request and records it on exit."""
        return self.recorder.transaction(slot, key)

    def flush(self) -> FlushReport:
        """Write every pending transaction record now."""
        return self.recorder.flush()

    def ingest(self, slot: str, source: str | Path | Iterable[str]) -> IngestReport:
        """Bulk-load transaction records from a JSONL file (schema: docs/rollouts.md)."""
        return self.recorder.ingest(slot, source)

    def routing_changed(self) -> None:
        """Called after a change of routing made through this registry: re-read tables at once."""
        if self._router is not None:
            self._router.invalidate()

    # --- provenance (see charter.service.provenance) -------------------------------------------

    def trace(self, txn_id: str) -> Trace:
        return self.provenance.trace(txn_id)

    def state(self, slot: str, at: datetime | None = None) -> SlotState:
        return self.provenance.state(slot, at)

    def state_diff(self, slot: str, t1: datetime, t2: datetime) -> StateDiff:
        return self.provenance.state_diff(slot, t1, t2)

    def changes(
        self, since: datetime, until: datetime | None = None, *, slot: str | None = None
    ) -> list[AuditEvent]:
        return self.provenance.changes(since, until, slot=slot)

    def as_user(self, name: str) -> Registry:
        """The same store, acting as another user (servers, tests, scripted sessions)."""
        return Registry(self.store, self.settings, name, self.clock)

    def close(self) -> None:
        if not self._closed:
            if self._recorder is not None:
                self._recorder.close()
            self.store.close()
            self._closed = True

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

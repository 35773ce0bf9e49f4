"""The registry: every use case of charter, bound to a store and an acting user."""

from __future__ import annotations

from dataclasses import dataclass, field

from charter.clock import Clock
from charter.config import Settings
from charter.storage.store import Store


@dataclass
class Registry:
    """Entry point of the Python SDK (embedded mode) and of every skin.

    `reg.models`, `reg.datasets`, `reg.prompts`, `reg.users`, `reg.audit` and `reg.policies` hold the use cases;
    each call is one database transaction, authorised for `actor`.
    """

    store: Store
    settings: Settings
    actor: str
    clock: Clock
    _closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        from charter.service.audit import AuditService
        from charter.service.datasets import DatasetService
        from charter.service.models import ModelService
        from charter.service.policies import PolicyService
        from charter.service.prompts import PromptService
        from charter.service.users import UserService

        self.users = UserService(self)
        self.audit = AuditService(self)
        self.policies = PolicyService(self)
        self.datasets = DatasetService(self)
        self.models = ModelService(self)
        self.prompts = PromptService(self)

    def as_user(self, name: str) -> Registry:
        """The same store, acting as another user (servers, tests, scripted sessions)."""
        return Registry(self.store, self.settings, name, self.clock)

    def close(self) -> None:
        if not self._closed:
            self.store.close()
            self._closed = True

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

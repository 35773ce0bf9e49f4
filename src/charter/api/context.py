"""What every request handler of the server shares: the store, and who is calling."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from charter.config import Settings
    from charter.service.registry import Registry


@dataclass
class ServerContext:
    """One per server process. `root` is the registry opened at start-up; handlers act through
    `registry_for(user)`, the same store acting as the authenticated user, so roles and separation
    of duties are enforced by the service layer exactly as in embedded mode. Each user's registry is
    kept for the life of the process, so its read caches serve every request of that user."""

    settings: Settings
    root: Registry
    _registries: dict[str, Registry] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def registry_for(self, user: str) -> Registry:
        registry = self._registries.get(user)
        if registry is None:
            with self._lock:
                registry = self._registries.get(user)
                if registry is None:
                    registry = self._registries[user] = self.root.as_user(user)
                    # a prompt changed by anyone, anywhere, is served at once: the cache is
                    # checked against the ledger head on every request (a primary-key read)
                    registry.prompts.configure_cache(revalidate=True)
        return registry

    def authenticate(self, token: str) -> str:
        """The name of the user `token` belongs to; raises `Unauthenticated` (HTTP 401) if the token
        is unknown, expired, revoked or its user is disabled."""
        return self.root.tokens.authenticate(token)

    def close(self) -> None:
        self.root.close()

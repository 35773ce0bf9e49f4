"""What every request handler of the server shares: the store, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from charter.config import Settings
    from charter.service.registry import Registry


@dataclass
class ServerContext:
    """One per server process. `root` is the registry opened at start-up; handlers act through
    `registry_for(user)`, the same store acting as the authenticated user, so roles and separation
    of duties are enforced by the service layer exactly as in embedded mode."""

    settings: Settings
    root: Registry

    def registry_for(self, user: str) -> Registry:
        return self.root.as_user(user)

    def authenticate(self, token: str) -> str:
        """The name of the user `token` belongs to; raises `Unauthenticated` (HTTP 401) if the token
        is unknown, expired, revoked or its user is disabled."""
        return self.root.tokens.authenticate(token)

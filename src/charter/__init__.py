"""charter: governance for production AI.

import charter
reg = charter.open()            # the embedded store, configured like the CLI
reg.models.get("support-llm@production")

reg = charter.open(url="https://charter.example.com", token="chtr_…")   # a server, same interface
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from charter.clock import Clock
    from charter.service.registry import Registry


def open(
    home: str | None = None,
    *,
    database_url: str | None = None,
    user: str | None = None,
    clock: Clock | None = None,
    url: str | None = None,
    token: str | None = None,
) -> Registry:
    """Open the registry. Embedded by default: arguments override CHARTER_HOME,
    CHARTER_DATABASE_URL and CHARTER_USER, and the store must exist (`charter init`). With `url`
    and `token` (or CHARTER_URL and CHARTER_TOKEN, when no embedded argument is given), the registry
    of a charter server: the same services, methods and result types over HTTP."""
    from typing import cast

    from charter.config import Settings

    settings = Settings.from_env()
    embedded_asked = home is not None or database_url is not None or clock is not None
    if url is None and settings.remote and not embedded_asked:
        url, token = settings.url, token or settings.token
    if url is not None:
        from charter.client.remote import RemoteRegistry
        from charter.errors import InvalidInput

        if not token:
            raise InvalidInput("a remote registry needs an API token: charter.open(url=..., token=...)")
        return cast("Registry", RemoteRegistry(url, token))
    from charter.service.setup import open_registry  # SQLAlchemy and the store: embedded only

    if home is not None or database_url is not None:
        settings = Settings.for_home(
            home or settings.home, user=user or settings.user, database_url=database_url
        )
    return open_registry(settings, clock=clock, user=user)

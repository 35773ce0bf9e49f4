"""charter: governance for production AI.

import charter
reg = charter.open()            # the embedded store, configured like the CLI
reg.models.get("support-llm@production")
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
) -> Registry:
    """Open the embedded registry. Arguments override CHARTER_HOME, CHARTER_DATABASE_URL and
    CHARTER_USER; the store must exist (`charter init`)."""
    from charter.config import Settings
    from charter.service.setup import open_registry

    settings = Settings.from_env()
    if home is not None or database_url is not None:
        settings = Settings.for_home(
            home or settings.home, user=user or settings.user, database_url=database_url
        )
    return open_registry(settings, clock=clock, user=user)

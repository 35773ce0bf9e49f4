"""How a command finds its registry: the embedded store, or a server when CHARTER_URL is set."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from charter.service.registry import Registry


def registry() -> Registry:
    """The embedded registry, or — with CHARTER_URL and CHARTER_TOKEN — the remote one, which has
    the same services, methods and result types (typed here as the embedded one it stands for)."""
    from charter.config import Settings

    settings = Settings.from_env()
    if settings.remote:
        from charter.client.remote import RemoteRegistry
        from charter.errors import InvalidInput

        if not settings.token:
            raise InvalidInput(
                f"CHARTER_URL is set ({settings.url}) but CHARTER_TOKEN is not; set CHARTER_TOKEN to an "
                "API token (`charter token create USER` on the server), or unset CHARTER_URL to use the "
                "embedded store"
            )
        assert settings.url is not None
        return cast("Registry", RemoteRegistry(settings.url, settings.token))
    from charter.service.setup import open_registry

    return open_registry(settings)
